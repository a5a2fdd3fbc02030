# `make run`: install and serve on http://127.0.0.1:8000 (local storage, development key).
# `make test`: install everything the tests need, lint and format-check with ruff, run the whole suite.
.PHONY: run test bench

run:
	scripts/bootstrap
	.venv/bin/inbox serve

test:
	scripts/bootstrap --test
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/pytest

bench:
	scripts/bootstrap --test
	.venv/bin/python -m bench.bench
