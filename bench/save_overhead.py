"""What registration adds to Model.save(): a registered model against an identical
unregistered one, measured in the same run.

    .venv/bin/python bench/save_overhead.py [--n 300]
"""

from __future__ import annotations

import argparse
import statistics

from _setup import machine, setup_django, timed


def main(n: int) -> dict:
    setup_django()
    import logging

    logging.getLogger("django-q").setLevel(logging.WARNING)
    from django.core.files.base import ContentFile
    from django.db import transaction

    import moderation
    from moderation.models import Job
    from tests.conftest import png_bytes
    from tests.testapp.models import Photo, Unregistered

    moderation.register(Photo, ["image"])
    data = png_bytes()
    rows = {}

    for label, model in (("unregistered", Unregistered), ("registered", Photo)):
        objs = []

        def create(model=model, objs=objs):
            with transaction.atomic():
                objs.append(model.objects.create(title="x", image=ContentFile(data, "b.png")))

        def edit(objs=objs):
            obj = objs[len(objs) // 2]
            obj.title = "y" if obj.title == "x" else "x"
            obj.save()

        create_wall, create_cpu = timed(create, n)
        edit_wall, edit_cpu = timed(edit, n)
        rows[label] = {"create": statistics.median(create_wall),
                       "create_cpu": statistics.median(create_cpu),
                       "edit": statistics.median(edit_wall),
                       "edit_cpu": statistics.median(edit_cpu)}
    assert Job.objects.count() == n  # one job per registered create, none per edit

    print(f"# save() overhead of registration ({machine()}, n={n}, median per save)")
    print(f"{'':22}{'unregistered':>14}{'registered':>12}{'ratio':>8}")
    for key, title in (("create", "create with a file"), ("edit", "save, no file change")):
        plain, reg = rows["unregistered"][key], rows["registered"][key]
        print(f"{title:22}{plain * 1000:11.2f} ms{reg * 1000:9.2f} ms{reg / plain:7.2f}x")
        plain_cpu, reg_cpu = rows["unregistered"][key + "_cpu"], rows["registered"][key + "_cpu"]
        print(f"{'  (CPU time)':22}{plain_cpu * 1000:11.2f} ms{reg_cpu * 1000:9.2f} ms"
              f"{reg_cpu / plain_cpu:7.2f}x")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    main(parser.parse_args().n)
