"""Build a notebook from a percent-format script (authoring aid; the .ipynb is what we commit).

    python tools/nbbuild.py chapter.py notebooks/NN_topic.ipynb

``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines start with "# ".
The notebook is written without outputs, with the course's kernel metadata.
"""

import sys

import nbformat


def build(src: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11"},
    }
    cells, kind, lines = [], None, []

    def flush():
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.split("\n"))
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "code" and text.strip():
            cells.append(nbformat.v4.new_code_cell(text))

    for line in src.split("\n"):
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    nb.cells = cells
    return nb


if __name__ == "__main__":
    src, out = sys.argv[1], sys.argv[2]
    nb = build(open(src, encoding="utf-8").read())
    nbformat.write(nb, out)
    print(f"wrote {out}: {len(nb.cells)} cells")
