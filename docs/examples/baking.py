"""The Baking workflow of scout-gear's test_workflow.rb, declared with scout_persist, and its job identities.

Run: ``python docs/examples/baking.py``. Everything printed is computed here.
"""

from __future__ import annotations

from scout_persist.workflow import Dep, Input, Workflow

Baking = Workflow("Baking")
Baking.task("whisk_eggs", "string")
Baking.task("prepare_batter", "string", inputs=[Input("add_bluberries", "boolean")], deps=[Dep("whisk_eggs")])
Baking.task("bake_muffin_tray", "string", deps=[Dep("prepare_batter")])


def show(job, depth=0):
    pad = "  " * depth
    print(f"{pad}{job.key}")
    print(f"{pad}  digest string: {job.digest_str}")
    print(f"{pad}  md5: {job.hash or '(clean name: no hash)'}")
    for dep in job.dependencies:
        show(dep, depth + 1)


if __name__ == "__main__":
    show(Baking.job("bake_muffin_tray", "Normal muffin"))
    show(Baking.job("bake_muffin_tray", "Blueberry muffin", {"add_bluberries": True}))
