#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, then in a scratch project with no .npmrc a plain
# `npm install ./xbar-*.tgz` with install scripts enabled (only the npm registry is needed),
# the README's TypeScript examples importing from 'xbar' (type-checked, then run) and the demo.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== npm pack"
(cd "$root" && npm pack --ignore-scripts=false --pack-destination "$work" >"$work/pack.log" 2>&1) ||
  { cat "$work/pack.log"; exit 1; }
tgz="$(ls "$work"/xbar-*.tgz)"
listing="$(tar -tzf "$tgz")"
files="$(grep -c . <<<"$listing")"
echo "$(basename "$tgz"): $(du -k "$tgz" | cut -f1) KiB, $files files"
for want in package/dist/src/index.js package/dist/src/index.d.ts package/dist/src/cli/main.js \
  package/bin/xbar.js package/native/crossbar_products.cc package/prebuilds/checksums.json \
  package/prebuilds/linux-x64/xbar_native.x86-64-v4.napi.glibc.node \
  package/prebuilds/linux-x64/xbar_native.x86-64-v3.napi.glibc.node \
  package/prebuilds/linux-arm64/xbar_native.arm64.armv8.napi.glibc.node \
  package/prebuilds/wasm/xbar.wasm package/prebuilds/wasm/xbar.wasm.json \
  package/models/vit-fmnist/model.safetensors package/models/bert-sst2/vocab.txt \
  package/data/fashion-mnist-demo/t10k-images-idx3-ubyte.gz package/data/sst2-demo/dev.tsv \
  package/LICENSE package/README.md; do
  grep -qx "$want" <<<"$listing" || { echo "missing from the package: $want"; exit 1; }
done
if grep -E '^package/(dist/(test|bench)/|.*\.map$|src/|test/|results/|build/|prebuilds/harness/)' <<<"$listing"; then
  echo "the package holds files a user does not need (above)"
  exit 1
fi

echo "== npm install (scripts enabled, no .npmrc)"
mkdir "$work/scratch"
cd "$work/scratch"
npm init -y >/dev/null
npm pkg set type=module
env -u ONNXRUNTIME_NODE_INSTALL -u ONNXRUNTIME_NODE_INSTALL_CUDA \
  npm install --ignore-scripts=false --foreground-scripts "$tgz" >install.log 2>&1 ||
  { cat install.log; exit 1; }
grep -q 'xbar@.* preinstall' install.log || { cat install.log; echo "xbar's preinstall did not run"; exit 1; }
if grep -qi 'downloading' install.log; then
  cat install.log
  echo 'the install downloaded something outside the npm registry'
  exit 1
fi

echo "== the README's TypeScript examples, from 'xbar'"
n=0
awk '/^```ts$/{on=1; n++; next} /^```$/{on=0} on{print > ("example-" n ".ts")}' "$root/README.md"
ls example-*.ts >/dev/null
cat >tsconfig.json <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "typeRoots": ["$root/node_modules/@types"], "types": ["node"]
  },
  "include": ["example-*.ts"]
}
JSON
node "$root/node_modules/typescript/bin/tsc" -p .
for js in example-*.js; do
  echo "-- $js"
  node "$js"
done

echo "== npx xbar demo"
npx xbar --version | tee version.txt
# the installed package runs its prebuilt kernel wherever one is built for the CPU: the targets
# whose CPU features this machine reports, by xbar's own rule (src/runtime/native.ts)
targets="$(node --input-type=module -e "import { nativeTargets } from '$PWD/node_modules/xbar/dist/src/runtime/native.js'; console.log(nativeTargets().join(' '))")"
if [ -n "$targets" ]; then
  grep -q '^crossbar kernel: native ' version.txt ||
    { echo "the installed package does not load its native kernel (this CPU runs: $targets)"; exit 1; }
else
  echo "no native target runs on this CPU (its features lack one the prebuilds need): the WebAssembly kernel"
  grep -q '^crossbar kernel: WebAssembly ' version.txt || { echo "the installed package loads no kernel"; exit 1; }
fi
npx xbar demo --repeats 1
echo "package check passed"
