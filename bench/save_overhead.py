"""What registration adds to Model.save(): a registered model against an identical
unregistered one, in the same run, calls interleaved so that noise hits both alike.

    .venv/bin/python bench/save_overhead.py [--n 300]

"create" includes what happens at commit: the job row, its audit event and the
django-q2 enqueue (an OrmQ row with the ORM broker).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from _setup import machine, setup_django


def main(n: int) -> None:
    setup_django()
    logging.getLogger("django-q").setLevel(logging.WARNING)
    from django.core.files.base import ContentFile
    from django.db import transaction

    import moderation
    from moderation.models import Job
    from tests.conftest import png_bytes
    from tests.testapp.models import Photo, Unregistered

    moderation.register(Photo, ["image"])
    data = png_bytes()
    models = {"unregistered": Unregistered, "registered": Photo}
    objs = {label: [] for label in models}
    samples = {(label, kind): ([], []) for label in models for kind in ("create", "edit")}

    def measure(key, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        samples[key][0].append(time.perf_counter() - w0)
        samples[key][1].append(time.process_time() - c0)

    for _ in range(n):
        for label, model in models.items():
            def create(model=model, label=label):
                with transaction.atomic():
                    objs[label].append(model.objects.create(
                        title="x", image=ContentFile(data, "b.png")))
            measure((label, "create"), create)
    for i in range(n):
        for label in models:
            obj = objs[label][i]

            def edit(obj=obj):
                obj.title = "y"
                obj.save()
            measure((label, "edit"), edit)
    assert Job.objects.count() == n  # one job per registered create, none per edit

    print(f"# save() overhead of registration ({machine()}, n={n}, median per save)")
    print(f"{'':24}{'unregistered':>14}{'registered':>12}{'ratio':>8}")
    for kind, title in (("create", "create with a file"), ("edit", "save, no file change")):
        for i, suffix in ((0, ""), (1, " (CPU)")):
            plain = statistics.median(samples[("unregistered", kind)][i])
            reg = statistics.median(samples[("registered", kind)][i])
            print(f"{title + suffix:28}{plain * 1000:11.3f} ms{reg * 1000:9.3f} ms"
                  f"{reg / plain:7.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    main(parser.parse_args().n)
