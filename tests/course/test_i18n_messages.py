"""What the package prints and draws, in Chinese with ``DLCOURSE_LANG=zh`` and byte for byte the English without it;
the message catalog covers every ``_()`` call and every notebook figure text, and its check catches a broken entry.
"""

from __future__ import annotations

import importlib.util
import shutil

import matplotlib
import pytest
from repo_paths import ROOT

from dlcourse import i18n
from dlcourse.course import checker
from dlcourse.course.checker import check, hint, use

matplotlib.use("Agg")

_spec = importlib.util.spec_from_file_location("i18n_messages", ROOT / "tools" / "i18n_messages.py")
messages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(messages)

STEP = "ch1.neuron_forward"


def _wrong_neuron(x, w, b):
    return x @ w + b  # the sigmoid forgotten


def _stub_neuron(x, w, b):
    z = ...  # your code
    return z


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setenv("DLCOURSE_LANG", "zh")
    monkeypatch.setenv("DLCOURSE_PROGRESS", "off")


@pytest.fixture
def en(monkeypatch):
    monkeypatch.delenv("DLCOURSE_LANG", raising=False)
    monkeypatch.setenv("DLCOURSE_PROGRESS", "off")


@pytest.fixture
def fresh_hints(monkeypatch):
    monkeypatch.setattr(checker._get(STEP), "hints_shown", 0)


# -- Chinese ---------------------------------------------------------------------------------------------------------
def test_a_failing_check_speaks_chinese(zh, capsys):
    assert not check(STEP, _wrong_neuron)
    out = capsys.readouterr().out.strip()
    print(out)
    assert out.startswith(f"✗ {STEP}：测试用例 1/4（输入：shape (3,)")
    assert "个值中有 1 个与参考答案不同" in out and "允许误差：1e-06 x |参考值| + 1e-09" in out
    assert out.endswith(f"卡住了？hint('{STEP}') 会给出提示。")


def test_check_passes_and_raises_in_chinese(zh, capsys):
    assert check(STEP, checker.reference(STEP))
    assert capsys.readouterr().out.strip() == f"✓ {STEP}：全部 4 个隐藏测试用例通过"
    with pytest.raises(TypeError, match=f"check：'{STEP}' 需要一个函数，实际得到 int"):
        check(STEP, 3)
    assert not check(STEP, lambda x, w, b: None)
    assert "你的函数返回了 None：是不是漏了 `return`？" in capsys.readouterr().out


def test_hint_levels_in_chinese(zh, fresh_hints, capsys):
    hint(STEP)
    hint(STEP)
    first, second = capsys.readouterr().out.strip().splitlines()
    assert first == f"{STEP} 的提示 1/3：分两步：先求输入的加权和再加上偏置，然后对它应用激活函数。"
    assert second.startswith(f"{STEP} 的提示 2/3：对形状为 (N, d) 的一批 x")
    for _ in range(2):
        hint(STEP)
    assert capsys.readouterr().out.strip().endswith(f"这是最后一条提示。solution('{STEP}') 会显示参考代码。")


def test_use_notice_in_chinese(zh, capsys):
    use(STEP, _stub_neuron)
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"→ 从这里开始使用课程的参考实现 {STEP}（你的实现：测试用例 1/4")
    assert "你的函数仍然返回 `...`：请把每一处 `...  # your code` 换成你的代码" in out
    use(STEP, checker.reference(STEP))
    assert capsys.readouterr().out.strip() == f"→ 从这里开始使用你的 {STEP}"


def test_progress_table_in_chinese(zh):
    text = str(checker.progress())
    assert text.splitlines()[0].startswith("第 1 章：")
    assert text.splitlines()[-1] == "（未记录学习进度）"
    assert "<th>章</th><th>已通过</th>" in checker.progress()._repr_html_()


def test_a_widget_speaks_chinese(zh):
    from dlcourse.course.ch01_neurons.neuron_explorer import NeuronExplorer

    w = NeuronExplorer()
    assert w.title == "一个神经元：a = f(w1 x1 + w2 x2 + b)"
    assert [c.description for c in w.controls.values()] == ["权重 w1", "权重 w2", "偏置 b", "激活函数"]
    assert w.readout.value.startswith("<b>w = (1.0, -0.5)，b = 0.0：该边界正确分类了")
    # figure texts the package sets
    assert w.axes[0].get_title() == "输入平面上的输出 a"
    assert w.axes[1].get_xlabel() == "预激活 z" and w.axes[1].get_title() == "sigmoid（标出数据点的 z）"


def test_notebook_style_figure_texts_in_chinese(zh):
    """A notebook's own code, unchanged: use_style() in Chinese translates what it sets (exact or a {} template)."""
    import matplotlib.pyplot as plt

    from dlcourse.plotting import use_style

    use_style()
    fig, ax = plt.subplots()
    lr = 0.05
    ax.set_title("loss vs epochs")
    ax.set_xlabel("epoch")
    ax.plot([0, 1], [1, 0], label=f"SGD (lr {lr})")
    ax.legend()
    fig.suptitle(f"associative recall: validation accuracy after {300} steps of batch {64}")
    assert ax.get_title() == "损失与轮次" and ax.get_xlabel() == "轮次"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["SGD（lr 0.05）"]
    assert fig._suptitle.get_text() == "联想回忆：批量 64 训练 300 步后的验证准确率"  # fields reordered ({1} {0})
    ax.set_ylabel("something no catalog has")
    assert ax.get_ylabel() == "something no catalog has"
    plt.close(fig)


# -- English: unchanged ----------------------------------------------------------------------------------------------
def test_english_messages_are_unchanged(en, fresh_hints, capsys):
    """The exact English texts (the notebooks print them; they were the same before the messages were marked)."""
    assert not check(STEP, _wrong_neuron)
    assert capsys.readouterr().out.strip() == (
        f"✗ {STEP}: case 1 of 4 (inputs: shape (3,), dtype float64, shape (3,), dtype float64): 1 of 1 value(s) "
        "differ from the reference by up to 0.12 of the reference's largest magnitude; allowed: 1e-06 x |reference| "
        f"+ 1e-09.  Stuck? hint('{STEP}') gives a hint.")
    use(STEP, _stub_neuron)
    assert capsys.readouterr().out.strip() == (
        f"→ using the course's reference {STEP} from here on (yours: case 1 of 4 (inputs: shape (3,), dtype float64, "
        "shape (3,), dtype float64): your function still returns `...`: replace each `...  # your code` with your "
        "code)")
    hint(STEP)
    assert capsys.readouterr().out.strip() == (
        f"Hint 1 of 3 for {STEP}: Two steps: a weighted sum of the inputs plus the bias, then the activation function "
        "applied to it.")
    assert str(checker.progress()).splitlines()[-1] == "(progress recording is off)"


def test_english_widget_is_unchanged(en):
    from dlcourse.course.ch01_neurons.neuron_explorer import NeuronExplorer

    w = NeuronExplorer()
    assert w.title == "One neuron: a = f(w1 x1 + w2 x2 + b)"
    assert [c.description for c in w.controls.values()] == ["weight w1", "weight w2", "bias b", "activation"]
    assert w.readout.value == ("<b>w = (1.0, -0.5), b = 0.0: the boundary classifies 61% of the points correctly "
                               "(class 1 where z > 0)</b>")
    assert w.axes[1].get_title() == "sigmoid at the data's z"


def test_figure_texts_stay_english_without_the_variable(en):
    assert i18n.translate_figure_text("loss vs epochs") == "loss vs epochs"
    assert i18n._("decision boundary") == "decision boundary"


# -- the catalog ----------------------------------------------------------------------------------------------------
def test_every_message_is_in_the_catalog_and_translated():
    """Every _()/N_() call of dlcourse/ and every figure text of the English notebooks: an entry, translated, not
    fuzzy, same {placeholders}; and no entry the code no longer has."""
    assert messages.problems() == []
    stats = messages.stats()
    assert stats["translated"] == stats["entries"] > 400 and stats["cjk_characters"] > 5000
    code_ids = {m for m, _f, _n in messages.code_messages()}
    assert "✗ {name}: {problem}.  Stuck? hint({name!r}) gives a hint." in code_ids  # the verdict
    assert any(f.endswith("exercises.py") for _m, f, _n in messages.code_messages())  # the hints


def test_notebook_figure_strings_become_templates():
    code = ('ax.set_title(f"lr = {lr:.2g}")\nplt.xlabel("epoch")\nax.plot(x, y, label=f"{name} (lr {lr})")\n'
            'ax.set(ylabel="$x_1$", title="the schedules")\nax.text(0.5, 0.5, f"step {k}: {n}/8 modes")\n'
            'print("not a figure text")\nax.plot(x, label=f"{\'with\' if bn else \'without\'} batch norm")\n')
    found = [t for t, _line in messages.figure_strings(code)]
    assert found == ["lr = {}", "epoch", "{} (lr {})", "the schedules", "step {}: {}/8 modes", "with batch norm",
                     "without batch norm"]



def _mutant_catalog(tmp_path, edit):
    path = tmp_path / "dlcourse.po"
    shutil.copy(messages.catalog_path(), path)
    catalog = messages.read_catalog(path)
    edit(catalog)
    messages.write_catalog(catalog, path)
    return path


def test_a_changed_placeholder_is_caught(tmp_path):
    msgid = "→ using your {name} from here on"

    def rename(catalog):
        catalog[msgid].string = catalog[msgid].string.replace("{name}", "{nmae}")
    found = messages.problems(_mutant_catalog(tmp_path, rename))
    assert len(found) == 1 and "placeholders differ" in found[0] and "{nmae}" in found[0], found

    def drop_spec(catalog):
        entry = catalog["final loss {loss:.4f} after {num_steps} steps, training accuracy {accuracy:.1%}"]
        entry.string = entry.string.replace("{accuracy:.1%}", "{accuracy}")
    found = messages.problems(_mutant_catalog(tmp_path, drop_spec))
    assert len(found) == 1 and "placeholders differ" in found[0], found


def test_missing_empty_and_fuzzy_entries_are_caught(tmp_path):
    def damage(catalog):
        catalog.delete("decision boundary")
        catalog["learning rate"].string = ""
        catalog["loss curves"].flags.add("fuzzy")
    found = "\n".join(messages.problems(_mutant_catalog(tmp_path, damage)))
    assert "no entry for 'decision boundary'" in found
    assert "'learning rate'" in found and "not translated" in found
    assert "'loss curves'" in found and "fuzzy" in found


def test_placeholders_compare_fields_not_order():
    assert messages.placeholder_problem("{} after {} steps", "{1} 步后 {0}") is None
    assert messages.placeholder_problem("{a:.2f} and {b}", "{b} 与 {a:.2f}") is None
    assert messages.placeholder_problem("{a:.2f}", "{a:.3f}") is not None
    assert messages.placeholder_problem("{}", "{} {}") is not None


def test_the_figure_matcher_reads_numbers_and_names(zh):
    assert i18n.translate_figure_text("GD on f(w) = 2.5 w²/2: the bound is 2/a = 0.8") == \
        "在 f(w) = 2.5 w²/2 上做梯度下降：稳定性界为 2/a = 0.8"
    assert i18n.translate_figure_text("Adam (lr 0.001)") == "Adam（lr 0.001）"
    assert i18n.translate_figure_text("0.5") == "0.5"  # a tick label stays as it is


def test_a_changed_notebook_figure_text_makes_its_entry_stale(tmp_path, monkeypatch):
    """Edit a figure title in an English notebook (a copy): check names the new text and the orphaned old one;
    extract adds the new entry (fuzzy, babel's close match, or empty) and check keeps failing until it is translated."""
    import json

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "dlcourse", tmp_path / "dlcourse", ignore=ignore)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("zh"))
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    monkeypatch.setattr(messages, "ROOT", tmp_path)
    assert messages.problems() == []
    path = tmp_path / "notebooks" / "03_optimizers.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and '"loss vs epochs"' in "".join(c["source"]))
    cell["source"] = [line.replace('"loss vs epochs"', '"loss against epochs"') for line in cell["source"]]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    found = "\n".join(messages.problems())
    assert "no entry for 'loss against epochs'" in found and "'loss vs epochs' is no longer in the code" in found
    messages.extract()
    found = "\n".join(messages.problems())
    assert "'loss against epochs'" in found and ("fuzzy" in found or "not translated" in found), found
    assert "'loss vs epochs'" not in found
