#!/usr/bin/env bash
# Installs Autobahn|Testsuite 0.8.2 (Python 2 only) without touching the
# system: Debian 11 (bullseye) packages of Python 2.7 are fetched from the
# machine's own Debian mirror with a private apt configuration and unpacked
# (dpkg -x) into the cache folder, then pip (for Python 2) installs the
# pinned test suite there. Everything downloaded stays in the cache, so a
# second run installs nothing and needs no network.
#
#   tools/autobahn/install.sh            # prints the path of the wstest wrapper
#
# Cache folder: $AUTOBAHN_CACHE, default ~/.cache/ringcast-autobahn.
set -euo pipefail
cache=${AUTOBAHN_CACHE:-$HOME/.cache/ringcast-autobahn}
root="$cache/root"          # unpacked .debs: root/usr/bin/python2.7 ...
wstest="$cache/bin/wstest"
mkdir -p "$cache/debs" "$cache/wheels" "$cache/bin"

if [ -x "$wstest" ] && "$wstest" --help >/dev/null 2>&1; then
  echo "$wstest"
  exit 0
fi

log() { printf 'autobahn install: %s\n' "$*" >&2; }

# 1. Python 2.7 from bullseye, through the machine's own mirror.
pkgs="python2.7 python2.7-minimal libpython2.7 libpython2.7-minimal libpython2.7-stdlib
      libpython2.7-dev python2.7-dev libssl1.1 libffi7"
missing=0
for p in $pkgs; do ls "$cache/debs/${p}_"*.deb >/dev/null 2>&1 || missing=1; done
if [ "$missing" = 1 ]; then
  # The mirror: the first Debian URI the system's apt sources name.
  mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}';
             cat /etc/apt/sources.list 2>/dev/null | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}') \
           | grep -v -- '-security' | grep -i debian | head -n1) || true
  [ -n "$mirror" ] || { log "no Debian mirror found in /etc/apt sources"; exit 1; }
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  apt_dir="$cache/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/etc/preferences.d"
  echo "deb [signed-by=$keyring] $mirror bullseye main" > "$apt_dir/etc/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o "Dir::Etc::SourceParts=-"
            -o "Dir::Etc::Preferences=$apt_dir/etc/preferences" -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
            -o "Dir::State::status=/dev/null" -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1")
  log "fetching Python 2.7 packages (bullseye) from $mirror"
  apt-get -qq "${apt_opts[@]}" update
  (cd "$cache/debs" && apt-get -qq "${apt_opts[@]}" download $pkgs)
fi
if [ ! -x "$root/usr/bin/python2.7" ]; then
  for deb in "$cache/debs/"*.deb; do dpkg -x "$deb" "$root"; done
fi

# 2. A wrapper that runs the unpacked interpreter with its own libraries.
cat > "$cache/bin/python2" <<WRAP
#!/usr/bin/env bash
export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export C_INCLUDE_PATH="$root/usr/include:$root/usr/include/python2.7"
export PYTHONHOME="$root/usr"
export PYTHONUSERBASE="$cache/py2"
exec "$root/usr/bin/python2.7" "\$@"
WRAP
chmod +x "$cache/bin/python2"
py2="$cache/bin/python2"

# 3. pip for Python 2, downloaded by Python 3's pip, then the test suite.
boot="pip==20.3.4 setuptools==44.1.1 wheel==0.37.1"
suite="setuptools==44.0.0 txaio==2.1.0 incremental==16.10.1 pyOpenSSL==19.1.0 cryptography==3.3.2
       Twisted==19.10.0 zope.interface==4.6.0 jinja2==2.11.3 markupsafe==1.1.1 Werkzeug==1.0.1
       klein==17.10.0 service_identity==18.1.0 unittest2==1.1.0 six==1.16.0
       autobahn[twisted,accelerate]==0.10.9 autobahntestsuite==0.8.2
       wsaccel==0.6.3"  # the last wsaccel that builds without Cython 3 (it ships its C)
if ! ls "$cache/wheels/"pip-20.3.4*.whl >/dev/null 2>&1; then
  log "downloading pip for Python 2"
  python3 -m pip download -q --dest "$cache/wheels" --python-version 2.7 --abi cp27mu \
    --platform manylinux1_x86_64 --only-binary=:all: $boot
fi
if ! "$py2" -m pip --version >/dev/null 2>&1; then
  # Run pip from its own wheel to install itself.
  "$py2" "$(ls "$cache/wheels/"pip-20.3.4*.whl)/pip" install -q --user --no-index --find-links "$cache/wheels" $boot
fi
stamp="$cache/wheels/.downloaded-$(echo "$suite" | md5sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  log "downloading Autobahn|Testsuite 0.8.2 and its pinned dependencies"
  "$py2" -m pip download -q --no-build-isolation --dest "$cache/wheels" $suite 2>&1 | grep -v DEPRECATION >&2 || true
  touch "$stamp"
fi
log "installing into $cache/py2"
# No build isolation: the few source packages build with the setuptools
# installed above, offline.
"$py2" -m pip install -q --user --no-index --no-build-isolation --find-links "$cache/wheels" $suite 2>&1 \
  | grep -v -e DEPRECATION -e 'not on PATH' -e 'Consider adding' >&2 || true

cat > "$wstest" <<WRAP
#!/usr/bin/env bash
exec "$py2" "$cache/py2/bin/wstest" "\$@"
WRAP
chmod +x "$wstest"
"$wstest" --help >/dev/null
echo "$wstest"
