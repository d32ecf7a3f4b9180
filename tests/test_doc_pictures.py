"""docs/pictures/make.py draws every picture the README and the docs show, and every page shows its own."""

import glob
import importlib.util
import os
import re

from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..")
CONCEPT_PAGES = ["boxes", "default_boxes", "matching", "loss", "nms", "nn", "models", "datasets", "training",
                 "evaluate", "understand"]


def _script():
    spec = importlib.util.spec_from_file_location("make_pictures", os.path.join(ROOT, "docs", "pictures", "make.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def referenced_pictures():
    """(page, picture name) for every picture a docs page or the README shows."""
    found = []
    for path in glob.glob(os.path.join(ROOT, "docs", "*.md")) + [os.path.join(ROOT, "README.md")]:
        text = open(path, encoding="utf-8").read()
        for name in re.findall(r"\]\((?:docs/)?pictures/([\w.-]+\.png)\)", text):
            found.append((os.path.basename(path), name))
    return found


def test_the_script_draws_every_picture(tmp_path):
    script = _script()
    written = script.make(output=str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == sorted(script.PICTURES)
    for path in written:
        with Image.open(path) as picture:
            assert picture.format == "PNG" and min(picture.size) > 200
        assert os.path.getsize(path) < 800_000, path


def test_every_shown_picture_is_made_by_the_script_and_committed():
    script = _script()
    for page, name in referenced_pictures():
        assert name in script.PICTURES, f"{page} shows {name}, which docs/pictures/make.py does not draw"
        assert os.path.exists(os.path.join(ROOT, "docs", "pictures", name)), f"{name} is not committed"


def test_the_readme_and_every_concept_page_open_with_a_picture():
    pages = {page for page, _ in referenced_pictures()}
    assert "README.md" in pages
    for page in CONCEPT_PAGES:
        assert f"{page}.md" in pages, f"docs/{page}.md shows no picture"
        text = open(os.path.join(ROOT, "docs", f"{page}.md"), encoding="utf-8").read()
        first_picture = text.find("](pictures/")
        assert 0 <= first_picture < 800, f"docs/{page}.md does not open with its picture"
