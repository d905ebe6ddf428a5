#!/usr/bin/env bash
# `npm run demo`: start a lab (as root: network namespaces with real sshd and Postgres), then show
# pem-settings on it: the hosts, a check-mode diff, the deploy, and a second deploy that changes
# nothing. The lab stays up for you to explore; `npm run lab:down -- --name demo` removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CI=${CI:-}
lab=demo
# The web hosts get the web app's own parser as pem_web_python (verify parses the URI with it) and a
# stand-in web app as pem_web_restart / pem_web_health (the first deploy bootstraps its schema).
npx tsx test/lab/cli.ts up --name "$lab" --subnet 10.231.250.0/24 --web-python --web-app
inv=$(npx tsx test/lab/cli.ts path --name "$lab")/inventory.ini
# The role's password comes from the environment or a .env file beside the inventory, never the inventory.
export PEM_SETTINGS_PASSWORD=${PEM_SETTINGS_PASSWORD:-"demo-Passw0rd/with:odd@chars"}
pem() { echo; echo "\$ pem-settings $*"; ./bin/pem-settings.js "$@"; }
pem hosts -i "$inv"
pem deploy -i "$inv" --check --diff
pem deploy -i "$inv"
pem deploy -i "$inv"
pem verify -i "$inv"
echo
echo "The lab is still up. Try: ./bin/pem-settings.js deploy -i $inv --limit web-2 --check --diff"
echo "Remove it with: npm run lab:down -- --name $lab"
