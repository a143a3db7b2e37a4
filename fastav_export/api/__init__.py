"""The Python API (docs/python.md); `fastav_export.Engine` and `fastav_export.build` re-export it.

    engine.py   Engine: open an engine directory, a checkpoint or a tiny model once; answer, stream,
                prompt_inputs; AnswerRecord, the record `run --json` writes
    runners.py  what an Engine runs on: an engine directory's graphs and front end (also the Triton
                model's), or the PyTorch reference
    models.py   which model a checkpoint directory or a registered name is
`build` lives with its command (cli/build_command.py): it parses the same flags.
"""
