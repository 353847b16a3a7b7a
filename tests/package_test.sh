#!/usr/bin/env bash
# tests/package_test.sh — builds the Debian packages from a clean copy of the
# tree (git archive of HEAD plus the working tree's changes, or the tree as
# it is when it is not a git checkout) in a temporary directory, runs lintian,
# installs seqr-gateway with apt-get on this machine, and checks the result
# as an operator would: every installed path, the system user, the config's
# owner and mode, --check-config run as the service user (the shipped
# placeholders refused, a filled-in config accepted), the unit through
# systemd-analyze verify and security, an upgrade keeping the operator's
# config, and `make install` never overwriting an existing config.
#
# Needs root (apt-get install, runuser). Run by dev/test; alone:
#   sudo tests/package_test.sh
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/seqr-pkgtest.XXXXXX)
keep=${KEEP:-0}
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

fail() { echo "package_test: FAIL: $*" >&2; exit 1; }
step() { echo "package_test: $*"; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (installs the package)"
# This test installs and purges seqr-gateway on this machine: never on a host
# where an operator's config lives (ours holds CHANGE-ME or shop-terminal-1).
conf=/etc/seqr-gateway/seqr-gateway.conf
if [ -e "$conf" ] && ! grep -q 'CHANGE-ME\|shop-terminal-1' "$conf"; then
  fail "$conf looks like a real configuration; refusing to purge it (run this on a test machine)"
fi

# 1. a clean copy: tracked files plus uncommitted edits, nothing built.
step "copying the tree to $work/seqr-gateway"
mkdir -p "$work/seqr-gateway"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard \
     | grep -zv '^build' | xargs -0 tar cf - --no-recursion) \
    | tar xf - -C "$work/seqr-gateway"
else
  tar cf - -C "$src" --exclude='./build*' . | tar xf - -C "$work/seqr-gateway"
fi
rm -f "$work/seqr-gateway/configure"

# 2. build (tests are the rest of the suite's business: nocheck here)
step "dpkg-buildpackage -b -us -uc"
(cd "$work/seqr-gateway" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
   dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) \
  || { tail -n 40 "$work/build.log" >&2; fail "dpkg-buildpackage failed"; }
gw_deb=$(ls "$work"/seqr-gateway_*.deb)
sim_deb=$(ls "$work"/seqr-sim_*.deb)
[ -f "$gw_deb" ] && [ -f "$sim_deb" ] || fail "missing .deb files"
gw_files=$(dpkg-deb -c "$gw_deb")
sim_files=$(dpkg-deb -c "$sim_deb")
grep -q 'usr/bin/seqr-sim' <<<"$gw_files" && fail "seqr-sim is in the seqr-gateway package"
grep -q 'usr/bin/seqr-sim$' <<<"$sim_files" || fail "seqr-sim package lacks usr/bin/seqr-sim"
grep -q 'man1/seqr-sim.1' <<<"$sim_files" || fail "seqr-sim package lacks its man page"
grep -q 'man1/seqr-sim.1' <<<"$gw_files" && fail "seqr-sim's man page is in the seqr-gateway package"
grep -qx '/etc/seqr-gateway/seqr-gateway.conf' <<<"$(dpkg-deb -I "$gw_deb" conffiles)" \
  || fail "the config is not a conffile"

# the maintainer scripts: stop before removal, restart a running service on upgrade
dpkg-deb -e "$gw_deb" "$work/control"
grep -q 'deb-systemd-invoke stop seqr-gateway.service' "$work/control/prerm" \
  || fail "prerm does not stop the service before removal"
grep -q 'deb-systemd-invoke try-restart seqr-gateway.service' "$work/control/postinst" \
  || fail "postinst does not restart a running service on upgrade"

# 3. lintian: no errors
step "lintian"
lintian --no-tag-display-limit "$work"/*.changes >"$work/lintian.log" 2>&1 || true
cat "$work/lintian.log"
grep -q '^E: ' "$work/lintian.log" && fail "lintian reports errors"
grep -q '^W: ' "$work/lintian.log" && fail "lintian reports warnings"

# 4. install (fresh: remove any earlier install of ours first)
if dpkg-query -W -f='${Status}' seqr-gateway 2>/dev/null | grep -q installed; then
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq seqr-gateway >/dev/null
fi
rm -f /etc/seqr-gateway/seqr-gateway.conf
step "apt-get install $gw_deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$gw_deb" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; fail "apt-get install failed"; }

for p in /usr/bin/seqr-gateway /etc/seqr-gateway/seqr-gateway.conf \
         /lib/systemd/system/seqr-gateway.service /usr/share/man/man8/seqr-gateway.8.gz \
         /usr/share/doc/seqr-gateway/examples/seqr-gateway.conf \
         /usr/share/doc/seqr-gateway/copyright /usr/share/doc/seqr-gateway/changelog.gz; do
  [ -e "$p" ] || fail "not installed: $p"
done
[ -e /usr/bin/seqr-sim ] && ! dpkg -S /usr/bin/seqr-sim 2>/dev/null | grep -q seqr-sim \
  && fail "/usr/bin/seqr-sim installed by seqr-gateway"
getent passwd seqr-gateway >/dev/null || fail "no system user seqr-gateway"
getent group seqr-gateway >/dev/null || fail "no system group seqr-gateway"
uid=$(id -u seqr-gateway)
[ "$uid" -lt 1000 ] || fail "seqr-gateway is not a system user (uid $uid)"
[ "$(stat -c '%U:%G %a' /etc/seqr-gateway/seqr-gateway.conf)" = "root:seqr-gateway 640" ] \
  || fail "config is $(stat -c '%U:%G %a' /etc/seqr-gateway/seqr-gateway.conf), want root:seqr-gateway 640"
/usr/bin/seqr-gateway --version | grep -q '^seqr-gateway ' || fail "--version"

# 5. --check-config as the service user: placeholders refused, real values accepted
as_service() { setpriv --reuid=seqr-gateway --regid=seqr-gateway --init-groups -- "$@"; }
step "--check-config of the shipped config as seqr-gateway (must refuse CHANGE-ME)"
if as_service /usr/bin/seqr-gateway --check-config /etc/seqr-gateway/seqr-gateway.conf \
     >"$work/check1.log" 2>&1; then
  cat "$work/check1.log"; fail "--check-config accepted the shipped placeholders"
fi
cat "$work/check1.log"
grep -q 'Permission denied' "$work/check1.log" && fail "the service user cannot read its config"
grep -q 'placeholder' "$work/check1.log" || fail "no placeholder complaint"

step "filling in the config as an operator would"
sed -i -e 's/^terminal_id = .*/terminal_id = shop-terminal-1/' \
       -e 's/^password = CHANGE-ME/password = operator-secret-1/' \
       /etc/seqr-gateway/seqr-gateway.conf
as_service /usr/bin/seqr-gateway --check-config /etc/seqr-gateway/seqr-gateway.conf \
  >"$work/check2.log" 2>&1 || { cat "$work/check2.log" >&2; fail "--check-config as seqr-gateway"; }
cat "$work/check2.log"
grep -q 'readable by' "$work/check2.log" && fail "0640 root:seqr-gateway warned about"
# nobody else may read it
if setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat /etc/seqr-gateway/seqr-gateway.conf \
     >/dev/null 2>&1; then
  fail "user nobody can read the config"
fi

# 6. the unit
unit=/lib/systemd/system/seqr-gateway.service
step "systemd-analyze verify $unit"
systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || { cat "$work/verify.log" >&2; fail "verify"; }
grep -v '^$' "$work/verify.log" | grep -i 'seqr-gateway' && fail "systemd-analyze verify complains"
step "systemd-analyze security --offline=yes $unit"
systemd-analyze security --offline=yes --no-pager "$unit" >"$work/security.log" 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for seqr-gateway.service: \([0-9.]*\).*/\1/p' "$work/security.log")
[ -n "$score" ] || { cat "$work/security.log" >&2; fail "no exposure score"; }
echo "package_test: exposure score $score (must be <= 1.6)"
awk -v s="$score" 'BEGIN { exit !(s <= 1.6) }' || fail "exposure $score is worse than 1.6"
grep -q '^User=seqr-gateway' "$unit" || fail "unit does not name User=seqr-gateway"
grep -q 'seqr-gateway.service' /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/* 2>/dev/null \
  && fail "the unit was enabled before the config was filled in"
[ -e /etc/systemd/system/multi-user.target.wants/seqr-gateway.service ] \
  && fail "the unit was enabled before the config was filled in"

# 7. reinstall (an upgrade path): the operator's config stays
step "reinstalling: the operator's config must survive"
sum=$(sha256sum /etc/seqr-gateway/seqr-gateway.conf)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$gw_deb" \
  >"$work/reinstall.log" 2>&1 || { cat "$work/reinstall.log" >&2; fail "reinstall"; }
[ "$(sha256sum /etc/seqr-gateway/seqr-gateway.conf)" = "$sum" ] || fail "reinstall changed the config"
[ "$(stat -c '%U:%G %a' /etc/seqr-gateway/seqr-gateway.conf)" = "root:seqr-gateway 640" ] \
  || fail "reinstall changed the config's owner or mode"

# 8. make install twice: the second keeps the first's edited config
step "make install keeps an existing config"
dest="$work/destdir"
make -s -C "$work/seqr-gateway" install DESTDIR="$dest" >/dev/null
conf="$dest/etc/seqr-gateway/seqr-gateway.conf"
[ -f "$conf" ] || fail "make install did not install a config into an empty $dest"
[ "$(stat -c '%a' "$conf")" = 640 ] || fail "make install gave the config mode $(stat -c '%a' "$conf")"
[ -f "$conf.example" ] || fail "make install did not install $conf.example"
echo "password = kept-by-operator" >>"$conf"
chmod 600 "$conf"
make -s -C "$work/seqr-gateway" install DESTDIR="$dest" >"$work/make-install.log"
grep -q 'kept-by-operator' "$conf" || fail "make install overwrote the existing config"
[ "$(stat -c '%a' "$conf")" = 600 ] || fail "make install changed the existing config's mode"
grep -q 'keeping the existing' "$work/make-install.log" || fail "make install did not say it kept the config"
grep -q 'kept-by-operator' "$conf.example" && fail "make install wrote the operator's config into the example"

# 9. remove: leaves the config (conffile) until purge
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq seqr-gateway >/dev/null
[ -e /usr/bin/seqr-gateway ] && fail "purge left /usr/bin/seqr-gateway"
step "all package checks passed"
