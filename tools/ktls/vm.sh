#!/usr/bin/env bash
# Kernel TLS for real: boots Debian's cloud kernel (CONFIG_TLS=m) in QEMU
# (software emulation; KVM where it works) with a small initramfs holding
# busybox, the kernel's tls and crypto modules, and ringcast built with the
# `ktls` feature, then runs there:
#   - the crate's unit tests and tests/tls.rs with sessions moving to the
#     kernel after their handshake;
#   - examples/echo over wss:// against ringcast-bench (20 B and 64 KiB
#     messages), its log saying kernel TLS took the sessions;
#   - /proc/net/tls_stat, which must count the kernel's TLS sessions.
# The machines this project is built on have no CONFIG_TLS in their own
# kernel; this is how the kTLS path runs anyway.
#
# With `bench`, it measures instead (tools/ktls/bench.sh): echo and idle
# memory, user-space rustls against kernel TLS, A B A B in one boot.
#
#   tools/ktls/vm.sh [checks|bench]   (needs apt for qemu-system-x86 and the kernel)
set -euo pipefail
mode=${1:-checks}
case $mode in checks | bench) ;; *) echo "usage: vm.sh [checks|bench]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/ktls-vm
mkdir -p "$work"
cd "$work"

if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then apt-get update -qq; fi
command -v qemu-system-x86_64 >/dev/null 2>&1 || apt-get install -y -qq qemu-system-x86 >/dev/null
command -v openssl >/dev/null 2>&1 || apt-get install -y -qq openssl >/dev/null
if [ ! -d kernel ]; then
  rm -f ./*.deb
  # The cloud kernel package the metapackage points at (26 MB).
  pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
  apt-get download -qq "$pkg" busybox-static 2>/dev/null
  mkdir -p kernel.tmp busybox
  dpkg-deb -x linux-image-*.deb kernel.tmp
  dpkg-deb -x busybox-static_*.deb busybox
  mv kernel.tmp kernel
fi
vmlinuz=$(ls kernel/boot/vmlinuz-*)
modules=$(ls -d kernel/lib/modules/*)
version=$(basename "$modules")
grep -q '^CONFIG_TLS=m' kernel/boot/config-* || { echo "this kernel has no TLS module" >&2; exit 1; }

rm -f echo-ktls echo-user
if [ "$mode" = checks ]; then
  # Debug builds: the ones the test command already made.
  (cd "$root" && cargo build -q -p ringcast --features ktls --example echo)
  cp "$root/target/debug/examples/echo" echo-ktls
  tests=$(cd "$root" && cargo test -q -p ringcast --features ktls --lib --test tls --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("ringcast", "tls"):
        print(m["target"]["name"], m["executable"])')
else
  # Release builds, with and without the feature.
  (cd "$root" && cargo build -q --release -p ringcast --example echo)
  cp "$root/target/release/examples/echo" echo-user
  (cd "$root" && cargo build -q --release -p ringcast --features ktls --example echo)
  cp "$root/target/release/examples/echo" echo-ktls
  tests=""
fi
(cd "$root" && cargo build -q --release -p ringcast-bench)

rm -rf initrd && mkdir -p initrd/{bin,sbin,lib/x86_64-linux-gnu,lib64,proc,sys,dev,tmp,certs,lib/modules/$version}
cp busybox/bin/busybox initrd/bin/
ln -s busybox initrd/bin/sh
mkdir -p initrd/etc && echo "127.0.0.1 localhost" > initrd/etc/hosts
ln -s ../bin/busybox initrd/sbin/modprobe
cp /lib64/ld-linux-x86-64.so.2 initrd/lib64/
for lib in libc.so.6 libgcc_s.so.1 libm.so.6; do cp "/lib/x86_64-linux-gnu/$lib" initrd/lib/x86_64-linux-gnu/; done
for dir in net/tls crypto arch/x86/crypto lib/crypto; do
  mkdir -p "initrd/lib/modules/$version/kernel/$dir"
  cp -r "$modules/kernel/$dir/." "initrd/lib/modules/$version/kernel/$dir/"
done
for echo in echo-ktls echo-user; do [ ! -f $echo ] || strip -o initrd/bin/$echo $echo; done
strip -o initrd/bin/ringcast-bench "$root/target/release/ringcast-bench"
if [ "$mode" = checks ]; then
  while read -r name exe; do strip -o "initrd/bin/test-$name" "$exe"; done <<<"$tests"
  [ -x initrd/bin/test-ringcast ] && [ -x initrd/bin/test-tls ] || { echo "test binaries not found" >&2; exit 1; }
fi
bash "$root/tools/tls_cert.sh" initrd/certs

cat > initrd/init <<INIT
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
ip link set lo up
ulimit -n 65536
depmod
for m in tls gcm ghash-generic ctr aesni-intel chacha20poly1305; do modprobe "\$m" 2>/dev/null; done
echo "VM: kernel \$(uname -r), tls module: \$(grep -c '^tls ' /proc/modules), \$(nproc) CPUs"
cd /tmp
sh /$mode.sh
poweroff -f
INIT
chmod +x initrd/init
cp "$root/tools/ktls/$mode.sh" initrd/
(cd initrd && find . | ../busybox/bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 > ../initrd.gz)

# KVM where it works (it does not in every sandbox); else emulation.
accel="-accel tcg,thread=multi -cpu max"
timeout 900 qemu-system-x86_64 $accel -m 1536 -smp 2 -kernel "$vmlinuz" -initrd initrd.gz \
  -append "console=ttyS0 panic=-1 quiet" -nographic -no-reboot -monitor none -serial stdio < /dev/null |
  tr -d '\r' | tee "vm-$mode.log" | grep -E '^VM:|^BENCH|^test |test result|messages|errors|Tls'
[ "$mode" = bench ] || grep -q '^VM: PASS' vm-checks.log
