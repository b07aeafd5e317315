"""What the model is asked to write, as pydantic models: the constrained decoder holds it to these
schemas, so every reply parses. Lengths and counts are capped so one reply fits a small model's
output budget (a reply cut off mid-JSON would not parse)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

Name = Annotated[str, Field(min_length=1, max_length=48)]
Short = Annotated[str, Field(max_length=100)]


class ExtractedEntity(BaseModel):
    name: Name
    type: str = Field(description="one of the entity types given in the prompt")
    description: Short


class ExtractedRelationship(BaseModel):
    source: Name
    target: Name
    description: Short
    strength: int = Field(ge=1, le=10, description="how strongly the two are related, 1 to 10")


class Extraction(BaseModel):
    entities: list[ExtractedEntity] = Field(max_length=6)
    relationships: list[ExtractedRelationship] = Field(max_length=6)


class MoreToFind(BaseModel):
    more: bool


class Finding(BaseModel):
    summary: Annotated[str, Field(max_length=100)]
    explanation: Annotated[str, Field(max_length=200)]
    references: list[int] = Field(max_length=5, description="numbers of the entities the finding is about")


class Report(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=80)]
    summary: Annotated[str, Field(max_length=300)]
    rating: float = Field(ge=0, le=10, description="how important the community is, 0 to 10")
    rating_explanation: Annotated[str, Field(max_length=150)]
    findings: list[Finding] = Field(max_length=3)


class Point(BaseModel):
    description: Annotated[str, Field(max_length=200)]
    score: int = Field(ge=0, le=100, description="how much the point helps answer the question, 0 to 100")
    report: int = Field(ge=1, description="the number of the report the point comes from")


class MapAnswer(BaseModel):
    points: list[Point] = Field(max_length=3)


class Primer(BaseModel):
    answer: Annotated[str, Field(max_length=300)]
    follow_ups: list[Annotated[str, Field(min_length=3, max_length=120)]] = Field(max_length=3)


def with_types(types: tuple[str, ...]) -> dict:
    """The extraction schema with entity types held to `types`."""
    schema = Extraction.model_json_schema()
    schema["$defs"]["ExtractedEntity"]["properties"]["type"]["enum"] = list(types)
    return schema
