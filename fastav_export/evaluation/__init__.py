"""`fastav-export eval`: accuracy per pruning policy on questions about videos, against FLOPs (docs/eval.md).

    datasets.py        jsonl, MUSIC-AVQA, AVQA and AVHBench files -> EvalSample (local files only)
    answers.py         the prompt of a question, and the rules that read an answer (letter, yes/no, open)
    run.py             every sample under every policy through Engine.answer; predictions.jsonl, --resume
    scoring.py         accuracy, bootstrap intervals, FLOPs and agreement per policy; summary.json and .md
    plot.py            accuracy_vs_flops.png (matplotlib, the optional `plots` extra)
    sample_dataset.py  `fastav-export sample-dataset`: clips and questions whose answers follow from them
"""
