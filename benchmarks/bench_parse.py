"""Parse all AWS managed policies to facts, cold, stage by stage, against json.loads.

    python benchmarks/bench_parse.py [--runs 5]

The corpus is ../shared/data/aws-managed-policies.jsonl: 1,594 documents, written out as JSON
text with two-space indentation (4.4 MB, as IAM returns them).  Each run is a fresh process.
Stages (all of the corpus each):

  import     importing the front end and clingo
  grammar    building the Lark parser from grammar/policy.lark
  json.loads the baseline: plain json.loads of every text
  decode     reasoner.parse.decode_json (json.loads plus duplicate-key tracking)
  skeleton   writing every member skeleton and checking it with the grammar (alone, to show its
             share: the front end does this inside the lowering pass)
  parse      parse_document: skeleton + grammar + lowering to the typed model, one pass
  facts      policy_facts: the clingo symbols of every policy

Targets (issue 2): text to facts in <= 1.5 s, and <= 10x json.loads.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, Stopwatch, machine, run_fresh, summarize  # noqa: E402

CORPUS = SHARED / "data" / "aws-managed-policies.jsonl"


def corpus_texts() -> list[str]:
    return [json.dumps(json.loads(line)["Document"], indent=2) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def child() -> None:
    texts = corpus_texts()  # before any timing: reading the file is not parsing
    sw = Stopwatch()
    with sw.stage("import"):
        from reasoner import grammar
        from reasoner.diagnostics import Diagnostics
        from reasoner.facts import policy_facts
        from reasoner.locate import Source
        from reasoner import parse as P
    with sw.stage("grammar"):
        grammar.parser()
    with sw.stage("json.loads"):
        for t in texts:
            json.loads(t)
    docs = []
    with sw.stage("decode"), P.gc_paused():
        for t in texts:
            docs.append(P.decode_json(t, "<bench>"))
    with sw.stage("skeleton"):
        n = 0
        for doc in docs:
            for k, v in doc.items():
                n += grammar.check_skeleton(P._top_skeleton(k, v), "policy") is None
            sts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
            for st in sts:
                for k, v in st.items():
                    sk = P._member_skeleton(k, v)
                    pieces = [sk] if sk is not None else [s for s, _ in P._member_skeletons(k, v)]
                    n += sum(grammar.check_skeleton(s, "statement") is None for s in pieces)
    policies = []
    with sw.stage("parse"), P.gc_paused():
        for i, (t, doc) in enumerate(zip(texts, docs)):
            diags = Diagnostics(strict=True)
            policies.append(P.parse_document(doc, "identity", f"p{i}", Source("<bench>", t), diags))
    facts = 0
    with sw.stage("facts"):
        for i, pol in enumerate(policies):
            facts += len(policy_facts(i + 1, pol))
    result = sw.as_dict()
    result.update(documents=len(texts), megabytes=sum(map(len, texts)) / 1e6, statements=sum(len(p.statements) for p in policies), facts=facts, skeletons=len(grammar._checked))
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child()
        return
    results = run_fresh(Path(__file__), [], args.runs)
    r0 = results[0]
    print(f"machine: {machine()}")
    print(f"corpus: {r0['documents']} documents, {r0['megabytes']:.2f} MB, {r0['statements']} statements, {r0['facts']} facts, {r0['skeletons']} distinct skeletons; {args.runs} fresh processes")
    print(f"peak RSS: {max(r['peak_rss_mb'] for r in results):.0f} MiB")
    for clock in ("cpu", "wall"):
        s = summarize(results, clock)
        base = s["json.loads"][0]
        print(f"\n{clock} seconds (median / best):")
        for stage, (med, best) in s.items():
            print(f"  {stage:11s} {med:7.3f} / {best:7.3f}   {med / base:6.1f}x json.loads")
        text_to_model = s["decode"][0] + s["parse"][0]
        total = text_to_model + s["facts"][0]
        cold = total + s["import"][0] + s["grammar"][0]
        print(f"  text -> model        {text_to_model:7.3f}   {text_to_model / base:6.1f}x json.loads")
        print(f"  text -> facts        {total:7.3f}   {total / base:6.1f}x json.loads   (target <= 1.5 s, <= 10x)")
        print(f"  with import+grammar  {cold:7.3f}")


if __name__ == "__main__":
    main()
