"""Running gitops inside a CI pipeline: the GitHub Action's step (:mod:`.action`) and the one
sticky pull-request comment it keeps up to date (:mod:`.github`). Settings (tokens, URLs, the
event) are read from the environment at the CLI edge and passed in."""
