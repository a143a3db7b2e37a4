"""The evaluation loop: every sample under every policy through `Engine.answer`, one line each.

predictions.jsonl grows one complete line per (sample, policy), flushed as it is written, so an
interrupted run leaves a file that `--resume` continues: lines already there are kept and their
(sample, policy) pairs skipped; a last line cut short by the interruption is dropped.
Samples run in the dataset's order, every policy of a sample before the next sample, so a
prefix of the run has every policy on the same samples.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..errors import FastAVError
from .answers import question_prompt, score
from .datasets import EvalSample

log = logging.getLogger("fastav_export")
PREDICTIONS = "predictions.jsonl"


@dataclass(frozen=True)
class PolicyRun:
    """A policy's name (its results' key) and its resolved pruning config."""

    name: str
    config: object  # contract.pruning_config.PruningConfig


def read_predictions(path: Path) -> list[dict]:
    """The complete lines of a predictions file; a cut-short last line is truncated away (in place)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        log.info(f"{path}: dropping a last line cut short by an interrupted run")
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    records = []
    for number, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise FastAVError(f"{path} line {number} is not a prediction (invalid JSON): move the file away or "
                              "choose another --out") from None
        if not isinstance(record, dict) or not {"id", "policy"} <= set(record):
            raise FastAVError(f"{path} line {number} is not a prediction (no id and policy): move the file away "
                              "or choose another --out")
        records.append(record)
    return records


def check_predictions_file(predictions: Path, resume: bool) -> None:
    """Refuse to append a new run to predictions of an earlier one, unless it is `resume`d."""
    if not resume and predictions.exists() and predictions.stat().st_size:
        raise FastAVError(f"{predictions} already holds predictions: pass --resume to continue that run, or "
                          "choose another --out")


def evaluate_sample(engine, sample: EvalSample, policy: PolicyRun, max_new_tokens: int) -> dict:
    """One prediction record. A sample whose media cannot be read, or that the engine refuses,
    is recorded with its one-line error and `correct` null."""
    question = question_prompt(sample.question, sample.options)
    started = time.perf_counter()
    record = {"id": sample.id, "policy": policy.name, "type": sample.type, "question": question,
              "answer": sample.answer}
    try:
        answer = engine.answer(sample.video, question, audio=sample.audio, pruning=policy.config,
                               max_new_tokens=max_new_tokens)
    except FastAVError as exc:
        return {**record, "prediction": None, "choice": None, "correct": None, "error": str(exc),
                "prompt_tokens": None, "kept_tokens": None, "flops_ratio": None,
                "seconds": round(time.perf_counter() - started, 6)}
    choice, correct = score(sample.answer, sample.options, answer.text)
    return {**record, "prediction": answer.text, "choice": choice, "correct": correct, "error": None,
            "prompt_tokens": answer.prompt_tokens, "kept_tokens": answer.kept_tokens,
            "flops_ratio": answer.flops_ratio["paper"], "seconds": round(time.perf_counter() - started, 6)}


def run_evaluation(engine, samples: list[EvalSample], policies: list[PolicyRun], predictions: Path,
                   max_new_tokens: int, resume: bool = False,
                   progress: Callable[[Iterable], Iterable] = lambda work: work) -> list[dict]:
    """Run what `predictions` does not hold yet and return the records of `samples` x `policies`
    (in that order). progress: wraps the work list (a progress bar)."""
    check_predictions_file(predictions, resume)
    existing = read_predictions(predictions) if resume else []
    done = {(record["id"], record["policy"]): record for record in existing}
    work = [(sample, policy) for sample in samples for policy in policies if (sample.id, policy.name) not in done]
    if done:
        log.info(f"resuming: {len(samples) * len(policies) - len(work)} of {len(samples) * len(policies)} "
                 f"predictions are in {predictions}")
    with open(predictions, "a", encoding="utf-8") as handle:
        for sample, policy in progress(work):
            record = evaluate_sample(engine, sample, policy, max_new_tokens)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            done[(sample.id, policy.name)] = record
    return [done[(sample.id, policy.name)] for sample in samples for policy in policies]
