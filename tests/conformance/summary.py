"""Per-operation summary of a schemathesis run, from its NDJSON report.

    python summary.py REPORT_DIR

For each operation: the test cases sent (with the probes derived from them: the no-auth copies
of `ignored_auth`, the other-method requests of `unsupported_method`), how many were
positive, and the response statuses, so a glance shows that the authenticated operations
were reached (2xx, 4xx from the handler) rather than stopped at 401.
"""

from __future__ import annotations

import collections
import json
import pathlib
import sys


def main(report_dir: str) -> None:
    (path,) = pathlib.Path(report_dir).glob("ndjson-*.ndjson")
    cases: dict[str, set[str]] = collections.defaultdict(set)
    positive: dict[str, set[str]] = collections.defaultdict(set)
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failed: collections.Counter = collections.Counter()
    for line in path.open():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for case_id, interaction in (recorder.get("interactions") or {}).items():
            response = interaction.get("response")
            if response is None:
                continue
            label = recorder["label"]  # the operation; unlisted-method probes count under it
            cases[label].add(case_id)
            meta = recorder["cases"][case_id]["value"].get("meta") or {}
            if (meta.get("generation") or {}).get("mode") == "positive":
                positive[label].add(case_id)
            statuses[label][response["status_code"]] += 1
        # Failed checks, also of a run stopped by the time limit before schemathesis listed them.
        for checks in (recorder.get("checks") or {}).values():
            for check in checks:
                if check.get("status") != "success":
                    failed[(recorder["label"], check.get("name", "?"))] += 1
    width = max(map(len, cases), default=10)
    print(f"{'operation':<{width}}  cases  positive  statuses")
    for label in sorted(cases, key=lambda s: s.split(" ", 1)[::-1]):
        counts = " ".join(f"{code}x{n}" for code, n in sorted(statuses[label].items()))
        print(f"{label:<{width}}  {len(cases[label]):>5}  {len(positive[label]):>8}  {counts}")
    print(f"{'total':<{width}}  {sum(map(len, cases.values())):>5}  {sum(map(len, positive.values())):>8}")
    for (label, check), n in sorted(failed.items()):
        print(f"failed check: {label}: {check} x{n}")


if __name__ == "__main__":
    main(sys.argv[1])
