#!/usr/bin/env bash
# Re-fetch the committed offline JavaScript with `npm pack` (no dependencies, ~2 s) and check it
# against the hashes below. The book loads these from its own site, never from a CDN.
# plotly.min.js is not here: book/_ext/offline_assets.py copies it at build time from the
# installed plotly package, so plotly.js always matches the plotly.py that drew the figures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent @jupyter-widgets/html-manager@1.0.15 requirejs@2.3.8 mathjax@3.2.2 >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done
cp jupyter-widgets-html-manager-1.0.15/package/dist/embed-amd.js "$here/embed-amd.js"
cp requirejs-2.3.8/package/require.js "$here/require.js"
cp mathjax-3.2.2/package/es5/tex-svg.js "$here/mathjax/tex-svg.js"
cp mathjax-3.2.2/package/LICENSE "$here/licenses/mathjax-LICENSE.txt"
cd "$here" && sha256sum -c <<'SUMS'
c1fc6b1d53af7522f78d664922abb32acac64ed0ecccb8f907f1e6fc7262563a  require.js
ca87dff57c70ffb2658794fde0eab0e27e5f5472a1f5df7ab2b08e1039fc4b72  embed-amd.js
d4295dc33744836935c1399feece5159577b34c5c8ffb9f1c6324cd82e03a882  mathjax/tex-svg.js
SUMS
