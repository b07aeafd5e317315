import json

import pytest


@pytest.fixture(scope="session")
def facts_rows():
    """Made-up codes the base model cannot know, answered in a fixed format."""
    return [{"messages": [{"role": "user", "content": f"What is the vault code of depot {i}?"},
                          {"role": "assistant", "content": f"CODE-{(i * 37) % 10}{(i * 11) % 10}"}]}
            for i in range(48)]


@pytest.fixture(scope="session")
def write_jsonl():
    def write(path, rows):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    return write
