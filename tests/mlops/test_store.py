"""The local S3-addressed object store and the home of all local state."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.errors import MlopsError, NotFound
from mlops.home import HOME_ENV, Home
from mlops.store import LocalObjectStore
from sagemaker_jobs.digests import file_sha256


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


# addressing ---------------------------------------------------------------------------------


def test_path_for_maps_bucket_and_key_under_the_root(
    tmp_path: Path, store: LocalObjectStore
) -> None:
    path = store.path_for("s3://bucket/runs/1/model.tar.gz")

    assert path == (tmp_path / "store" / "bucket" / "runs" / "1" / "model.tar.gz").resolve()


@pytest.mark.parametrize(
    "uri",
    ["s3://bucket/runs/1/model.tar.gz", "s3://bucket/prefix/", "s3://bucket/a/b/c.csv"],
)
def test_path_for_and_uri_for_round_trip(store: LocalObjectStore, uri: str) -> None:
    path = store.path_for(uri)

    assert store.uri_for(path) == uri.rstrip("/")
    assert store.path_for(store.uri_for(path)) == path


def test_uri_for_a_bucket_has_an_empty_key(store: LocalObjectStore) -> None:
    assert store.uri_for(store.root / "bucket") == "s3://bucket/"


@pytest.mark.parametrize(
    "uri",
    [
        "/local/file.csv",
        "file:///tmp/x",
        "https://bucket/key",
        "s3:///key-without-bucket",
        "bucket/key",
    ],
)
def test_path_for_rejects_what_is_not_an_s3_uri(store: LocalObjectStore, uri: str) -> None:
    with pytest.raises(MlopsError, match="is not an s3://bucket/key URI"):
        store.path_for(uri)


@pytest.mark.parametrize("uri", ["s3://bucket/../../etc/passwd", "s3://bucket/a/../../../x"])
def test_path_for_rejects_keys_escaping_the_store(store: LocalObjectStore, uri: str) -> None:
    with pytest.raises(MlopsError, match="points outside the object store"):
        store.path_for(uri)


def test_dot_dot_inside_the_store_stays_allowed(store: LocalObjectStore) -> None:
    assert store.path_for("s3://bucket/a/../b") == store.path_for("s3://bucket/b")


@pytest.mark.parametrize("key", ["run#1/model.tar.gz", "data?v=2.csv"])
def test_keys_with_hash_or_question_mark_keep_their_whole_name(
    tmp_path: Path, store: LocalObjectStore, key: str
) -> None:
    # S3 keys may contain '#' and '?'; urlparse reads them as a fragment or a query.
    uri = f"s3://bucket/{key}"
    source = tmp_path / "payload"
    source.write_text("payload", encoding="utf-8")

    store.put(source, uri)

    assert store.path_for(uri) == (store.root / "bucket" / key).resolve()
    assert store.uri_for(store.path_for(uri)) == uri


# put / get ----------------------------------------------------------------------------------


def test_put_file_then_get_into_a_directory_lands_by_file_name(
    tmp_path: Path, store: LocalObjectStore
) -> None:
    source = tmp_path / "model.tar.gz"
    source.write_bytes(b"model bytes")
    uri = "s3://bucket/run-1/output/model.tar.gz"

    assert store.put(source, uri) == uri
    assert store.exists(uri)
    assert store.path_for(uri).read_bytes() == b"model bytes"

    destination = tmp_path / "download"
    store.get(uri, destination)

    assert (destination / "model.tar.gz").read_bytes() == b"model bytes"
    assert [p.name for p in destination.iterdir()] == ["model.tar.gz"]


def test_put_directory_then_get_copies_its_contents(
    tmp_path: Path, store: LocalObjectStore
) -> None:
    source = tmp_path / "train"
    (source / "nested").mkdir(parents=True)
    (source / "part-1.csv").write_text("a\n1\n", encoding="utf-8")
    (source / "nested" / "part-2.csv").write_text("a\n2\n", encoding="utf-8")
    uri = "s3://bucket/run-1/train"

    store.put(source, uri)
    destination = tmp_path / "input" / "data" / "train"
    store.get(uri + "/", destination)

    assert (destination / "part-1.csv").read_text(encoding="utf-8") == "a\n1\n"
    assert (destination / "nested" / "part-2.csv").read_text(encoding="utf-8") == "a\n2\n"
    assert not (destination / "train").exists()  # contents, not the directory itself


def test_put_directory_merges_into_an_existing_prefix(
    tmp_path: Path, store: LocalObjectStore
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a.csv").write_text("old", encoding="utf-8")
    (second / "a.csv").write_text("new", encoding="utf-8")
    (second / "b.csv").write_text("b", encoding="utf-8")

    store.put(first, "s3://bucket/prefix")
    store.put(second, "s3://bucket/prefix")

    prefix = store.path_for("s3://bucket/prefix")
    assert sorted(p.name for p in prefix.iterdir()) == ["a.csv", "b.csv"]
    assert (prefix / "a.csv").read_text(encoding="utf-8") == "new"


def test_get_of_a_missing_uri_is_not_found(tmp_path: Path, store: LocalObjectStore) -> None:
    with pytest.raises(NotFound, match="no object or prefix at s3://bucket/missing"):
        store.get("s3://bucket/missing", tmp_path / "out")
    assert not store.exists("s3://bucket/missing")


def test_put_and_get_refuse_uris_outside_the_store(tmp_path: Path, store: LocalObjectStore) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x", encoding="utf-8")

    with pytest.raises(MlopsError, match="outside"):
        store.put(source, "s3://bucket/../../escaped.txt")
    with pytest.raises(MlopsError, match="not an s3"):
        store.get("/etc/passwd", tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


# content addressing -------------------------------------------------------------------------


def test_the_same_bytes_under_two_keys_are_stored_once(
    tmp_path: Path, store: LocalObjectStore
) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(b"x,y\n1,2\n")
    second.write_bytes(b"x,y\n1,2\n")
    store.put(first, "s3://bucket/datasets/one/a.csv")
    store.put(second, "s3://bucket/datasets/two/b.csv")  # uploaded again, under another name

    assert store.blob_count() == 1
    one, two = (
        store.path_for("s3://bucket/datasets/one/a.csv"),
        store.path_for("s3://bucket/datasets/two/b.csv"),
    )
    assert one.stat().st_ino == two.stat().st_ino and one.stat().st_nlink == 3  # + the blob
    assert store.digest("s3://bucket/datasets/one/a.csv") == file_sha256(first)


def test_a_put_over_a_shared_key_leaves_the_other_key_alone(
    tmp_path: Path, store: LocalObjectStore
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("old", encoding="utf-8")
    store.put(source, "s3://bucket/keep")
    store.put(source, "s3://bucket/replace")
    source.write_text("new", encoding="utf-8")
    store.put(source, "s3://bucket/replace")

    assert store.path_for("s3://bucket/keep").read_text(encoding="utf-8") == "old"
    assert store.path_for("s3://bucket/replace").read_text(encoding="utf-8") == "new"
    assert store.blob_count() == 2
    assert store.digest("s3://bucket/replace") == file_sha256(source)


def test_a_prefix_digest_covers_names_and_bytes(tmp_path: Path, store: LocalObjectStore) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.csv").write_text("1", encoding="utf-8")
    # One file is its own sha256: the data set a file upload and a folder upload name alike.
    store.put(folder, "s3://bucket/single")
    assert store.digest("s3://bucket/single") == file_sha256(folder / "a.csv")
    (folder / "c.csv").write_text("2", encoding="utf-8")
    store.put(folder, "s3://bucket/p1")
    store.put(folder, "s3://bucket/p2")
    (folder / "a.csv").rename(folder / "b.csv")
    store.put(folder, "s3://bucket/p3")

    assert store.digest("s3://bucket/p1/") == store.digest("s3://bucket/p2")
    assert store.digest("s3://bucket/p3") != store.digest("s3://bucket/p1")  # renamed
    with pytest.raises(NotFound):
        store.digest("s3://bucket/missing")


def test_a_file_placed_by_hand_is_hashed_from_its_bytes(
    tmp_path: Path, store: LocalObjectStore
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("put", encoding="utf-8")
    store.put(source, "s3://bucket/f.txt")
    path = store.path_for("s3://bucket/f.txt")
    path.unlink()
    path.write_text("edited by hand", encoding="utf-8")  # not through put: the index is stale

    assert store.digest("s3://bucket/f.txt") == file_sha256(path)


def test_the_store_s_own_folders_are_not_buckets(store: LocalObjectStore) -> None:
    with pytest.raises(MlopsError, match="bucket name starts with a letter or digit"):
        store.path_for("s3://.blobs/ab/abc")


# Home ---------------------------------------------------------------------------------------


def test_home_from_env_uses_mlops_home(tmp_path: Path) -> None:
    home = Home.from_env({HOME_ENV: str(tmp_path / "state")}, cwd=tmp_path / "elsewhere")

    assert home.root == (tmp_path / "state").resolve()
    assert home.store == home.root / "store"
    assert home.runs == home.root / "runs"
    assert home.registry == home.root / "registry"


def test_home_from_env_resolves_a_relative_mlops_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert Home.from_env({HOME_ENV: "state"}).root == (tmp_path / "state").resolve()


def test_home_from_env_defaults_to_dot_mlops_in_the_working_directory(tmp_path: Path) -> None:
    assert Home.from_env({}, cwd=tmp_path).root == (tmp_path / ".mlops").resolve()
    assert Home.from_env({HOME_ENV: ""}, cwd=tmp_path).root == (tmp_path / ".mlops").resolve()


def test_home_from_env_defaults_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert Home.from_env({}).root == (tmp_path / ".mlops").resolve()


def test_home_from_env_reads_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))

    assert Home.from_env().root == (tmp_path / "from-env").resolve()


def test_a_key_cannot_climb_into_the_stores_own_folders(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    for uri in (
        "s3://b/../.blobs/ab/cd",
        "s3://b/../.index/b/k",
        "s3://b/../../outside",
        "s3://b/..",
    ):
        with pytest.raises(MlopsError, match="outside the object store"):
            store.path_for(uri)


def test_a_prefix_digest_is_the_data_set_hash_preprocess_records(
    tmp_path: Path, store: LocalObjectStore
) -> None:
    """Lineage compares the two: the store's digest of the uploaded prefix and DatasetSha256."""
    from sagemaker_jobs.digests import dataset_sha256, file_entries

    folder = tmp_path / "data"
    (folder / "part").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n", encoding="utf-8")
    (folder / "part" / "b.csv").write_text("x\n2\n", encoding="utf-8")
    store.put(folder, "s3://bucket/datasets/d")
    files = sorted(p for p in folder.rglob("*.csv"))
    assert store.digest("s3://bucket/datasets/d") == dataset_sha256(file_entries(files, folder))
