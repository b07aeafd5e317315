"""The eval runner: graphs, models and functions as targets, failures recorded without stopping the
run, bootstrap intervals, bit-identical reruns, paired comparison; judges that always parse and a
pairwise judge whose order swap cancels position bias."""

from __future__ import annotations

import json

import pytest

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.eval import EvalRun, Example, LLMJudge, evaluate, pairwise
from agentforge.tools.servers.calculator import calculate

DATA = [Example("capital of France?", "Paris"), Example("2 + 2?", "4"), Example("capital of Japan?", "Tokyo"),
        Example("boom", "x")]
ANSWERS = {"capital of France?": "Paris", "2 + 2?": "four", "capital of Japan?": "tokyo."}


def answer(question: str) -> str:
    if question == "boom":
        raise RuntimeError("the target failed")
    return ANSWERS[question]


def test_function_target_scores_aggregates_and_survives_a_failure(tmp_path):
    run = evaluate(answer, DATA, ["exact_match", "normalized_exact_match", "token_f1"], progress=False, name="v1")
    by_input = {r["input"]: r for r in run.rows}
    assert by_input["capital of Japan?"]["scores"] == {"exact_match": 0.0, "normalized_exact_match": 1.0, "token_f1": 1.0}
    assert by_input["boom"]["error"] == "RuntimeError: the target failed"
    assert by_input["boom"]["scores"] == {"exact_match": None, "normalized_exact_match": None, "token_f1": None}
    summary = run.summary["normalized_exact_match"]
    assert summary["mean"] == pytest.approx(2 / 3) and summary["n"] == 3 and summary["errors"] == 1
    assert summary["ci_low"] <= summary["mean"] <= summary["ci_high"]

    again = evaluate(answer, DATA, ["exact_match", "normalized_exact_match", "token_f1"], progress=False, name="v1")
    assert json.dumps(again.summary) == json.dumps(run.summary)  # bit-identical, intervals included

    run.to_json(tmp_path / "v1.json")
    loaded = EvalRun.from_json(tmp_path / "v1.json")
    better = evaluate(lambda q: {"capital of France?": "Paris", "2 + 2?": "4", "capital of Japan?": "Tokyo",
                                 "boom": "x"}[q], DATA, ["exact_match"], progress=False, name="v2")
    diff = better.compare(loaded)["exact_match"]
    assert diff["this"] == 1.0 and diff["other"] == pytest.approx(1 / 3) and diff["n"] == 3
    assert diff["diff"] == pytest.approx(2 / 3) and diff["ci_low"] <= diff["diff"] <= diff["ci_high"]


def test_agent_graph_target_and_tool_call_trajectory():
    model = ScriptedChatModel([{"tool_calls": [{"name": "calculate", "args": {"expression": "6 * 7"}}]}, "It is 42."])
    agent = create_react_agent(model, [calculate])
    dataset = [Example("What is 6 * 7?", {"tool_calls": [{"name": "calculate", "args": {"expression": "6 * 7"}}]})]
    run = evaluate(agent, dataset, ["tool_calls"], progress=False)
    assert run.rows[0]["output"] == "It is 42." and run.summary["tool_calls"]["mean"] == 1.0
    assert run.rows[0]["tool_calls"] == [{"name": "calculate", "args": {"expression": "6 * 7"}}]


def test_custom_metrics_repeats_and_bad_arguments():
    run = evaluate(str.upper, [Example("ab", "AB"), Example("c", "C")], [lambda out, ex: out.text == ex.reference],
                   repeats=3, progress=False)
    assert run.summary["<lambda>"]["mean"] == 1.0 and run.summary["<lambda>"]["sd"] == 0.0 and len(run.rows) == 6
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        evaluate(str.upper, DATA, ["nope"], progress=False)
    with pytest.raises(ValueError, match="empty"):
        evaluate(str.upper, [], ["exact_match"], progress=False)


def test_llm_judge_scores_on_its_scale():
    model = ScriptedChatModel(['{"reasoning": "right city", "score": 5}', '{"reasoning": "wrong", "score": 2}'])
    judge = LLMJudge(model, "Is the answer the correct capital?")
    assert judge("Paris", question="capital of France?", reference="Paris") == 1.0
    assert judge("Lyon", question="capital of France?") == pytest.approx(0.25)
    schema = model.calls[0]["response_format"].model_json_schema()
    assert schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]  # constrained: the verdict always parses
    assert "Reference answer: Paris" in model.calls[0]["messages"][-1].content
    with pytest.raises(ValueError, match="scale"):
        LLMJudge(model, "x", scale=(5, 1))


def test_pairwise_swaps_the_order_to_cancel_position_bias():
    always_a = ScriptedChatModel(['{"reasoning": "", "winner": "A"}'] * 2)
    assert pairwise(always_a, "q", "first answer", "second answer").winner == "tie"
    consistent = ScriptedChatModel(['{"reasoning": "", "winner": "B"}', '{"reasoning": "", "winner": "A"}'])
    result = pairwise(consistent, "q", "first answer", "second answer")
    assert result.winner == "second" and result.verdicts == ("B", "A")
    prompts = [c["messages"][-1].content for c in consistent.calls]
    assert prompts[0].index("first answer") < prompts[0].index("second answer")
    assert prompts[1].index("second answer") < prompts[1].index("first answer")


@pytest.mark.slow
def test_the_embedded_model_as_judge_always_parses():
    from agentforge.agents import EngineChatModel

    judge = LLMJudge(EngineChatModel("smollm2-135m", max_tokens=64), "Is the answer correct and complete?")
    cases = [("capital of France?", "Paris"), ("2 + 2?", "5"), ("largest planet?", "Jupiter"), ("boiling point of "
             "water at sea level in Celsius?", "100"), ("author of Hamlet?", "Charles Dickens"), ("color of the sky "
             "on a clear day?", "blue")]
    verdicts = [judge.verdict(answer, question=question) for question, answer in cases]
    assert len(verdicts) == len(cases) and all(1 <= v.score <= 5 for v in verdicts)



def test_wandb_offline_run_holds_the_metrics(tmp_path, wandb_offline, wandb_summary):
    run = evaluate(answer, DATA, ["normalized_exact_match", "token_f1"], progress=False, name="wandb-check")
    run.log_to_wandb(project="agentforge-tests")
    [run_file] = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    summary = wandb_summary(run_file)
    assert summary["normalized_exact_match/mean"] == pytest.approx(2 / 3)
    assert summary["token_f1/n"] == 3 and summary["normalized_exact_match/errors"] == 1
    [table] = tmp_path.glob("wandb/offline-run-*/files/media/table/rows_*.table.json")
    assert len(json.loads(table.read_text())["data"]) == len(DATA)
