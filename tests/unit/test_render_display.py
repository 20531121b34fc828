"""Problems name files relative to the repository even when it is reached through a symlink."""

from __future__ import annotations

from pathlib import Path

from gitops.render import Renderer


def test_paths_through_a_symlinked_repository_are_shown_relative(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "k8s").mkdir(parents=True)
    (real / "k8s" / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x]}\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    renderer = Renderer(link)
    assert renderer.display(link / "k8s" / "bad.yaml") == "k8s/bad.yaml"
    assert renderer.display(real / "k8s" / "bad.yaml") == "k8s/bad.yaml"
    assert renderer.display(tmp_path / "elsewhere.yaml") == str(tmp_path / "elsewhere.yaml")
