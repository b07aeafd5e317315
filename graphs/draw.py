"""Drawing a graph: Mermaid text (`draw_mermaid`) and a self-contained SVG (`draw_svg`)."""

from __future__ import annotations

import html
import typing
from dataclasses import dataclass

from .spec import GraphSpec
from .types import END, START


@dataclass(slots=True, frozen=True)
class Edge:
    source: str
    target: str
    conditional: bool = False
    label: str | None = None


@dataclass(slots=True)
class DrawableGraph:
    nodes: list[str]
    edges: list[Edge]

    @classmethod
    def from_spec(cls, spec: GraphSpec) -> DrawableGraph:
        edges = [Edge(s, t) for s, targets in spec.edges.items() for t in targets]
        edges += [Edge(s, t) for sources, t in spec.joins for s in sources]
        for source, branches in spec.branches.items():
            for branch in branches:
                if branch.path_map:
                    edges += [Edge(source, t, True, None if str(k) == t else str(k)) for k, t in branch.path_map.items()]
                else:
                    edges += [Edge(source, t, True) for t in _destinations(branch.path, spec)]
        for name, node in spec.nodes.items():
            edges += [Edge(name, t, True) for t in node.destinations]
        used = {e.source for e in edges} | {e.target for e in edges}
        nodes = [START] + list(spec.nodes) + ([END] if END in used else [])
        return cls(nodes, list(dict.fromkeys(edges)))

    def draw_mermaid(self) -> str:
        """Mermaid flowchart text; conditional edges are dotted."""
        ids = {name: _mermaid_id(name) for name in self.nodes}
        lines = ["---", "config:", "  flowchart:", "    curve: linear", "---", "graph TD;"]
        for name in self.nodes:
            if name == START:
                lines.append(f"\t{ids[name]}([<p>{START}</p>]):::first")
            elif name == END:
                lines.append(f"\t{ids[name]}([<p>{END}</p>]):::last")
            else:
                lines.append(f"\t{ids[name]}({name})")
        for e in self.edges:
            arrow = "-.->" if e.conditional else "-->"
            if e.label:
                arrow = f"-. &nbsp;{e.label}&nbsp; .->" if e.conditional else f"-- &nbsp;{e.label}&nbsp; -->"
            lines.append(f"\t{ids[e.source]} {arrow} {ids[e.target]};")
        lines += ["\tclassDef default fill:#f2f0ff,line-height:1.2", "\tclassDef first fill-opacity:0",
                  "\tclassDef last fill:#bfb6fc"]
        return "\n".join(lines) + "\n"

    def draw_svg(self) -> str:
        """An SVG drawing laid out in layers (distance from START), no external tools needed."""
        layer = {START: 0}
        frontier = [START]
        while frontier:
            nxt = []
            for source in frontier:
                for e in self.edges:
                    if e.source == source and e.target not in layer:
                        layer[e.target] = layer[source] + 1
                        nxt.append(e.target)
            frontier = nxt
        deepest = max(layer.values(), default=0)
        for name in self.nodes:
            layer.setdefault(name, deepest + 1)
        rows: dict[int, list[str]] = {}
        for name in self.nodes:
            rows.setdefault(layer[name], []).append(name)
        box_w, box_h, gap_x, gap_y = 140, 36, 30, 60
        width = max(len(r) for r in rows.values()) * (box_w + gap_x) + gap_x
        pos = {}
        for depth, names in rows.items():
            row_w = len(names) * (box_w + gap_x) - gap_x
            for i, name in enumerate(names):
                pos[name] = ((width - row_w) / 2 + i * (box_w + gap_x), gap_y / 2 + depth * (box_h + gap_y))
        height = max(y for _, y in pos.values()) + box_h + gap_y / 2
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
               f'font-family="sans-serif" font-size="13">',
               '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
               'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
        for e in self.edges:
            (x1, y1), (x2, y2) = pos[e.source], pos[e.target]
            dash = ' stroke-dasharray="5,4"' if e.conditional else ""
            out.append(f'<line x1="{x1 + box_w / 2:.0f}" y1="{y1 + box_h:.0f}" x2="{x2 + box_w / 2:.0f}" y2="{y2:.0f}" '
                       f'stroke="#555"{dash} marker-end="url(#arrow)"/>')
            if e.label:
                out.append(f'<text x="{(x1 + x2) / 2 + box_w / 2:.0f}" y="{(y1 + box_h + y2) / 2:.0f}" fill="#555">'
                           f"{html.escape(e.label)}</text>")
        for name, (x, y) in pos.items():
            fill = "#bfb6fc" if name == END else "#ffffff" if name == START else "#f2f0ff"
            out.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{box_w}" height="{box_h}" rx="10" fill="{fill}" stroke="#555"/>')
            out.append(f'<text x="{x + box_w / 2:.0f}" y="{y + box_h / 2 + 4:.0f}" text-anchor="middle">{html.escape(name)}</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"


def _destinations(path, spec: GraphSpec) -> list[str]:
    """Where a router without a path_map can go: its `Literal[...]` return hint, else anywhere."""
    try:
        hint = typing.get_type_hints(path).get("return")
    except Exception:
        hint = None
    if typing.get_origin(hint) is typing.Literal:
        return [str(v) for v in typing.get_args(hint)]
    return list(spec.nodes) + [END]


def _mermaid_id(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)
