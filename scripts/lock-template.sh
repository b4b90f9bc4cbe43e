#!/usr/bin/env bash
# Re-resolve the generated repo's locked requirements (requirements/serve.txt and dev.txt from its
# pyproject.toml, serve-compiled.txt from requirements/serve-compiled.in at serve.txt's versions),
# with hashes (installs use --require-hashes). Run after changing the template's dependencies; the
# locks are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
template='{{cookiecutter.project}}'
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# pyproject.toml carries template tags only in name/description/authors; give them plain values.
sed -e 's/{{ cookiecutter.project }}/model/' -e 's/{{ cookiecutter.description | tojson }}/"model"/' \
    -e 's/{{ cookiecutter.author | tojson }}/"author"/' "$template/pyproject.toml" > "$work/pyproject.toml"
for lock in serve dev; do
  extra=(); [ "$lock" = dev ] && extra=(--extra dev)
  uv pip compile "$work/pyproject.toml" "${extra[@]}" --universal -p 3.11 --no-header --no-annotate -q \
    --generate-hashes -o "$template/requirements/$lock.txt"
  sed -i "1i # Locked by scripts/lock-template.sh (in a generated repo: make lock). Do not edit by hand." \
    "$template/requirements/$lock.txt"
  echo "locked $template/requirements/$lock.txt ($(grep -c '==' "$template/requirements/$lock.txt") packages)"
done
# The compiled-model image's requirements: serve.txt's packages without scikit-learn/skops, same versions.
sed 's/{{ cookiecutter.package }}/package/' "$template/requirements/serve-compiled.in" > "$work/serve-compiled.in"
uv pip compile "$work/serve-compiled.in" -c "$template/requirements/serve.txt" --universal -p 3.11 --no-header --no-annotate -q --generate-hashes \
  -o "$template/requirements/serve-compiled.txt"
sed -i "1i # Locked by scripts/lock-template.sh (in a generated repo: make lock). Do not edit by hand." \
  "$template/requirements/serve-compiled.txt"
echo "locked $template/requirements/serve-compiled.txt ($(grep -c '==' "$template/requirements/serve-compiled.txt") packages)"
