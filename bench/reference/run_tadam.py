"""Learn a reference TADAM automaton (PyPI tadam-learner 0.2.1).

Runs inside bench/reference/.venv (see README.md there), never in the
project's own environment.

Input format (JSON lines, written by our side): one sequence per line, a
JSON list of events, each event ``[symbol, [iat, size]]``:

    [["S_>_Empty", [0, 0]], ["SA_<_Empty", [12, 0]], ["A_>_Empty", [1, 0]]]

* symbol: any non-empty string (for packets, docs METHODS.md §3.4, e.g.
  ``AP_>_Text:GET``); the script maps symbols to safe tokens itself, so
  spaces, ``:`` or ``$`` inside a symbol are fine;
* values: a list of non-negative integers, the same length on every event
  of the file (for packets [inter-arrival time, payload size], in whatever
  integer unit the caller chose: TADAM integerises values and its guards
  give the probability of the box v +- 1/2);
* the end-of-word symbol ``$`` is appended by the script, do not write it;
* empty lines are skipped.

``--heldout FILE`` (same format) is scored after learning with the two
scoring functions the package offers:

* ``Automaton.get_log_proba(word, timed=True)``: greedy path, log2 of
  transition probability x guard box probability per event, floored at
  -1000 per word when the word leaves the automaton (no noise handling);
* ``mdl.data_cost_new_word``: code length in bits of the word under the
  automaton and its noise model (edit alignment, or literal encoding if
  no alignment exists).

Both are reported per event, the ``$`` event included.  The package's
guard probability of a value vector v is ``cdf(v + 1/2) - cdf(v - 1/2)``
of the multivariate normal, which for two or more values is not the
probability of the box around v (it counts an L-shaped region, so the
"probabilities" of all integer vectors add up to more than 1 and the code
lengths come out short).  ``heldout_box_bits_per_event`` scores the same
automaton and noise model again with the box probability by
inclusion-exclusion over the box's corners, so that it can be compared
with a properly normalised model.

Prints one JSON line: sequences, events, seconds, timed_out, states,
edges, symbols, model_bits, data_bits, and with --heldout
heldout_sequences, heldout_events, heldout_log2_per_event,
heldout_words_rejected, heldout_bits_per_event,
heldout_box_bits_per_event.  Learning runs in a forked child killed after
``--timeout-s``, in a scratch working directory (the reference's edge
split writes debug files out0.dot..out19.dot into the current one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from typing import Any

from _timeout import run_with_timeout

END = "$"


def read_sequences(path: str) -> list[list[tuple[str, list[int]]]]:
    """Read the JSON-lines sequence file."""
    sequences = []
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            events = json.loads(line)
            if not events:
                raise ValueError(f"{path}:{number}: empty sequence")
            sequences.append([(str(s), [int(v) for v in vs]) for s, vs in events])
    return sequences


class Tokens:
    """Map symbols to tokens the reference's string format accepts."""

    def __init__(self) -> None:
        self.token_of: dict[str, str] = {}
        self.symbol_of: dict[str, str] = {END: END}

    def encode(self, sequence: list[tuple[str, list[int]]]) -> str:
        """Write one sequence as the reference's 'tok:v1,v2 tok:v1,v2'."""
        parts = []
        for symbol, values in sequence:
            token = self.token_of.setdefault(symbol, f"s{len(self.token_of)}")
            self.symbol_of[token] = symbol
            parts.append(f"{token}:{','.join(map(str, values))}")
        return " ".join(parts)

    def events(self, sequence: list[tuple[str, list[int]]], width: int) -> list:
        """Return a sequence as the scorers' (token, values) list, with $."""
        known = [(self.token_of.get(s, f"?{s}"), list(v)) for s, v in sequence]
        return known + [(END, [0] * width)]


# module level, so that the reference's worker processes can pickle it
WIDTH = [1]


def parse_event(token: str) -> tuple[str, list[int]]:
    """Parse 'tok:v1,v2' (the reference's data_parser hook)."""
    if END in token:
        return END, [0] * WIDTH[0]
    symbol, _, values = token.partition(":")
    return symbol, [int(v) for v in values.split(",")]


def run_child(args: argparse.Namespace, send: Any) -> None:
    """Learn (and score) in the child; send the result dict back."""
    # the reference's edge split writes debug files out<0-19>.dot to the
    # working directory: give it the scratch one main() made
    os.chdir(args.scratch)
    with contextlib.redirect_stdout(sys.stderr):
        from tadam.mdl import NoiseModel
        from tadam.options import Init, Options, Search
        from tadam.tadam import exhaustive_search

        train = read_sequences(args.sequences)
        WIDTH[0] = len(train[0][0][1])
        tokens = Tokens()
        words = [tokens.encode(s) for s in train]
        options = Options(
            filename=None,
            export=False,
            data_parser=parse_event,
            init=Init[args.init],
            search=Search.EXHAUSTIVE,
        )
        noise = NoiseModel()
        began = time.monotonic()
        learner = exhaustive_search(
            options,
            tss_list=words,
            noise_model=noise,
            cpu_nb=args.processes,
            parallelized=args.processes > 1,
        )
        automaton = learner.ta
        result = {
            "seconds": time.monotonic() - began,
            "states": len(automaton.states),
            "edges": len(automaton.edges),
            "symbols": len(tokens.token_of),
            "model_bits": float(learner.model_cost),
            "data_bits": float(learner.data_cost),
        }
        if args.heldout:
            result.update(score(automaton, noise, tokens, args.heldout))
    send.send(result)


def score(automaton: Any, noise: Any, tokens: Tokens, path: str) -> dict:
    """Score held-out sequences with both of the package's scorers."""
    from tadam.mdl import data_cost_new_word

    heldout = read_sequences(path)
    words = [tokens.events(s, WIDTH[0]) for s in heldout]
    events = sum(len(w) for w in words)
    log2 = [automaton.get_log_proba(w, timed=True) for w in words]
    bits = [data_cost_new_word(automaton, w, noise) for w in words]
    box_bits = score_with_box_probabilities(automaton, noise, words)
    return {
        "heldout_sequences": len(words),
        "heldout_events": events,
        "heldout_log2_per_event": sum(log2) / events,
        "heldout_words_rejected": sum(1 for v in log2 if v <= -1000),
        "heldout_bits_per_event": sum(bits) / events,
        "heldout_box_bits_per_event": sum(box_bits) / events,
    }


def score_with_box_probabilities(automaton: Any, noise: Any, words: list) -> list:
    """Return data_cost_new_word of each word with true box probabilities.

    Replaces the package's guard probability, in this child process only
    and after learning, by the probability of the box [v - 1/2, v + 1/2]
    (inclusion-exclusion over its 2^d corners of the normal's CDF).
    """
    import itertools

    from tadam.edge import Edge
    from tadam.mdl import data_cost_new_word

    def box_probability(
        self: Any, value: Any, additional_visits: Any = None, recompute: bool = True
    ) -> float:
        if recompute:
            self.time_distribution(additional_visits)
        cache = self.__dict__.setdefault("box_cache", {})
        key = (str(value), id(self.dist))
        if key not in cache:
            total = 0.0
            for corner in itertools.product((0, 1), repeat=len(value)):
                point = [v - 0.5 + c for v, c in zip(value, corner, strict=True)]
                sign = (-1) ** (len(value) - sum(corner))
                total += sign * float(self.dist.cdf(point))
            cache[key] = max(total, 0.0)
        return cache[key]

    Edge.value_probability = box_probability
    return [data_cost_new_word(automaton, w, noise) for w in words]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sequences", help="JSON-lines training sequences")
    parser.add_argument("--heldout", help="JSON-lines sequences to score")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument(
        "--init",
        default="APTA",
        choices=["APTA", "STATE_SYMBOL", "UNIVERSAL"],
        help="initial automaton (default APTA, the package's default)",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="reference's worker pool size"
    )
    args = parser.parse_args(argv)
    args.sequences = os.path.abspath(args.sequences)
    if args.heldout:
        args.heldout = os.path.abspath(args.heldout)
    return args


def main(argv: list[str] | None = None) -> int:
    """Learn with a wall-clock limit and print one JSON line."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="run-tadam-") as args.scratch:
        result, timed_out, elapsed_s, exitcode = run_with_timeout(
            run_child, args, args.timeout_s
        )

    sequences = read_sequences(args.sequences)
    line: dict[str, Any] = {
        "sequences": len(sequences),
        "events": sum(len(s) for s in sequences),
        "timed_out": timed_out,
        "seconds": elapsed_s,
    }
    line.update(result)
    if not result and not timed_out:
        line["error"] = f"child exited with code {exitcode}"
    print(json.dumps(line))
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
