"""The exception hierarchy: every error in ``sessionkit.exceptions``, each also a builtin, each with
its ``hint`` as a field that survives pickling, and the raise sites that use the newer classes."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import FIXTURES
from hypothesis import given
from hypothesis import strategies as st

import sessionkit
import sessionkit.exceptions as exc
from sessionkit.cli import main
from sessionkit.exceptions import (
    ExportError,
    MissingDependencyError,
    SessionkitError,
    SparkResultError,
    TargetExistsError,
    with_hint,
)

BUILTINS = (ValueError, OSError, LookupError, RuntimeError, ImportError)

#: Exception classes defined outside ``sessionkit.exceptions``: private control flow, caught
#: inside sessionkit and never raised to a caller.
INTERNAL = {
    "sessionkit.archive._parts.NotAFileError": "a listed file changed under the export; counted as vanished",
    "sessionkit.archive._parts.FileTooLargeError": "a source file over the size limit; quarantined",
    "sessionkit.tables._builder._Invalid": "the fast path met a value it does not take; the checked path explains it",
    "sessionkit.tables._builder._BadTimestamp": "a timestamp the fast path cannot parse; becomes a SessionFormatError",
}


def _modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(sessionkit.__path__, "sessionkit.")]
    return [importlib.import_module(name) for name in names if not name.endswith("__main__")]


def test_every_exception_class_is_in_the_exceptions_module_or_internal() -> None:
    found = {}
    for module in _modules():
        for name, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    outside = {key for key in found if not key.startswith("sessionkit.exceptions.")}
    assert outside == set(INTERNAL), "an exception class outside sessionkit/exceptions.py"
    for key in outside:  # private: by its name or its module's
        assert any(part.startswith("_") for part in key.split(".")[1:]), key
    assert {key.rsplit(".", 1)[1] for key in found if key not in outside} == set(exc.__all__)


@pytest.mark.parametrize("name", [n for n in exc.__all__ if n not in ("SessionkitError", "SessionkitWarning")])
def test_each_public_error_is_a_sessionkit_error_and_a_builtin(name: str) -> None:
    cls = getattr(exc, name)
    assert issubclass(cls, SessionkitError) and issubclass(cls, BUILTINS), name
    assert getattr(sessionkit, name) is cls  # also sk.<name>
    assert (cls.__doc__ or "").strip()


def _instances() -> list[SessionkitError]:
    return [
        exc.SessionkitError("the thing is wrong", hint="do this"),
        exc.SessionFormatError("not a timestamp", source="a.json", path="$.x", hint="fix it"),
        exc.SourceNotFoundError("src: no such folder", hint="pass the state directory"),
        exc.DatasetError("out: not a dataset. Hint: point at OUT"),  # the hint read from the text
        exc.DatasetExistsError("out: holds other files", hint="export into a new folder"),
        exc.DatasetLockedError("out: locked", hint="wait"),
        exc.PrivacyError("k: no such key file", hint="create one"),
        ExportError([{"file": "a.json", "message": "bad"}], 3, published=False),
        TargetExistsError("a.json already exists", hint="pass --overwrite"),
        MissingDependencyError("needs boto3", name="boto3", hint="pip install 'sessionkit[s3]'"),
        SparkResultError("Spark returned 2 columns where DuckDB gives 3"),
    ]


@pytest.mark.parametrize("err", _instances(), ids=lambda e: type(e).__name__)
def test_the_hint_is_a_field_in_the_message_and_survives_pickling(err: SessionkitError) -> None:
    assert str(err) == with_hint(err.message, err.hint)
    if err.hint is not None:
        assert str(err).endswith(f"Hint: {err.hint}") and str(err).count("Hint:") == 1
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err)
    assert (back.message, back.hint) == (err.message, err.hint)
    assert vars(back) == vars(err)


def test_a_missing_dependency_is_also_an_import_error_with_its_name() -> None:
    err = MissingDependencyError("needs boto3", name="boto3", hint="pip install 'sessionkit[s3]'")
    assert isinstance(err, ModuleNotFoundError) and err.name == "boto3"
    assert pickle.loads(pickle.dumps(err)).name == "boto3"
    assert str(err) == "needs boto3. Hint: pip install 'sessionkit[s3]'"


def test_an_export_error_keeps_its_message_and_summary() -> None:
    err = ExportError([{"file": "a.json", "message": "bad"}], 3)
    assert str(err) == (
        "1 of 3 files are not valid oxios sessions or agent records; the good files were exported and the bad"
        " ones quarantined:\n  a.json: bad\nHint: `sessionkit errors OUT` lists them; fix or remove them, then export again"
    )
    err.summary = "the summary"  # type: ignore[assignment]
    back = pickle.loads(pickle.dumps(err))
    assert back.summary == "the summary" and back.errors == err.errors and back.total == 3
    from sessionkit.archive import ExportError as archived

    assert archived is ExportError is sessionkit.ExportError


_line = st.text(st.characters(blacklist_characters="\n"), min_size=1).filter(lambda s: "Hint: " not in s)


@given(message=st.one_of(_line, st.lists(_line, min_size=2, max_size=3).map("\n".join)), hint=_line)
def test_a_message_with_its_hint_splits_back_into_both(message: str, hint: str) -> None:
    err = SessionkitError(with_hint(message, hint))
    assert (err.message, err.hint) == (message, hint)
    assert str(err) == str(SessionkitError(message, hint=hint)) == with_hint(message, hint)


@given(text=st.text())
def test_any_text_is_kept_as_it_is(text: str) -> None:
    err = SessionkitError(text)
    assert str(err) == text == with_hint(err.message, err.hint)


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_without_boto3_an_s3_export_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sessionkit import _s3

    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingDependencyError) as info:
        _s3.client()
    err = info.value
    assert isinstance(err, ModuleNotFoundError) and err.name == "boto3"
    assert err.hint == "pip install 'sessionkit[s3]'"
    code, stderr = _cli(capsys, "export", FIXTURES / "oxios-v2", "s3://bucket/prefix", "--quiet")
    assert code == 1
    assert stderr == "error: writing a dataset to s3:// needs boto3. Hint: pip install 'sessionkit[s3]'\n"


def test_without_pyspark_register_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("sqlglot")
    from sessionkit.spark._source import require

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(MissingDependencyError) as info:
        require()
    err = info.value
    assert isinstance(err, ModuleNotFoundError) and err.name == "pyspark"
    assert err.hint is not None and err.hint.startswith("pip install 'sessionkit[spark]'")
    assert str(err).count("Hint:") == 1


def test_spark_results_of_another_shape_are_a_spark_result_error() -> None:
    pytest.importorskip("sqlglot")
    import polars as pl

    from sessionkit.spark._source import conform

    want = pl.Schema({"n": pl.Int64, "name": pl.String})
    with pytest.raises(SparkResultError, match="Spark returned 1 columns where DuckDB gives 2") as info:
        conform(pl.DataFrame({"n": [1]}), want, "SELECT 1")
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(SparkResultError, match="Spark returned Float64 for column 'name'"):
        conform(pl.DataFrame({"n": [1], "name": [1.5]}), want, "SELECT 1")


def test_restore_onto_an_existing_file_is_a_target_exists_error(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sessionkit.archive import restore

    dataset = exported["oxios-v2"]
    restore(dataset, tmp_path / "back", jobs=1)
    with pytest.raises(TargetExistsError) as info:
        restore(dataset, tmp_path / "back", jobs=1)
    assert isinstance(info.value, FileExistsError) and "already exists" in info.value.message
    assert info.value.hint == "restore into an empty folder, or pass --overwrite"
    code, stderr = _cli(capsys, "restore", dataset, tmp_path / "back", "--quiet", "--jobs", "1")
    assert code == 1 and stderr.startswith("error: ") and stderr.count("Hint:") == 1
    assert stderr.rstrip("\n").endswith("Hint: restore into an empty folder, or pass --overwrite")


def test_write_sessions_onto_an_existing_file_is_a_target_exists_error(tmp_path: Path) -> None:
    from sessionkit.oxios import read_sessions, write_sessions

    sessions = list(read_sessions(FIXTURES / "oxios-v2"))[:2]
    write_sessions(sessions, tmp_path)
    with pytest.raises(TargetExistsError, match=r"already exists\. Hint: restore into an empty folder") as info:
        write_sessions(sessions, tmp_path)
    assert info.value.hint == "restore into an empty folder, or pass overwrite=True (--overwrite)"


def test_the_cli_prints_duckdb_errors_by_type_with_the_lock_down_hint_once(
    exported: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from sessionkit.query import LOCKED_HINT

    code, stderr = _cli(capsys, "sql", exported["oxios-v1"], "SELECT * FROM read_csv('/etc/passwd')")
    assert code == 1 and stderr.startswith("error: Permission Error") and "Traceback" not in stderr
    assert stderr.count("Hint:") == 1 and stderr.rstrip("\n").endswith(LOCKED_HINT)
    code, stderr = _cli(capsys, "sql", exported["oxios-v1"], "SELECT nope FROM sessions")
    assert code == 1 and stderr.startswith("error: Binder Error") and "Hint:" not in stderr


def test_the_cli_lets_other_errors_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import sessionkit.cli as cli

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug, not a user's mistake")

    monkeypatch.setattr(cli.cli, "main", broken)
    with pytest.raises(ZeroDivisionError):
        main(["stats", "x"])


def test_the_version_has_a_module_of_its_own() -> None:
    from sessionkit._version import __version__

    assert sessionkit.__version__ == __version__
    for name in ("sessionkit._versions", "sessionkit.archive._state", "sessionkit._store"):
        source = Path(importlib.import_module(name).__file__ or "").read_text()
        assert "from sessionkit import __version__" not in source, name
