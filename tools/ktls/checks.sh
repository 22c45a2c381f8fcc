# Run inside the VM of tools/ktls/vm.sh (busybox sh, in /tmp): the tests
# and a wss echo with kernel TLS; the last line says PASS or FAIL.
fail=0
/bin/test-ringcast --test-threads=1 > unit.log 2>&1 || fail=1
tail -3 unit.log
/bin/test-tls --test-threads=1 > tls.log 2>&1 || fail=1
grep -E '^test |test result' tls.log
RUST_LOG=info /bin/echo-ktls --listen 127.0.0.1:9443 --shards 2 --tls-cert /certs/cert.pem --tls-key /certs/key.pem > echo.log 2>&1 &
sleep 1
for size in 20 65536; do
  /bin/ringcast-bench echo --url wss://127.0.0.1:9443/ --tls-ca /certs/cert.pem --connections 10 --size $size \
    --duration 2 --warmup 1 --json bench-$size.json > bench.log 2>&1 || fail=1
  grep -E 'messages|errors' bench.log
  grep -q '"errors":0' bench-$size.json || { echo "VM: errors in the $size B echo"; fail=1; }
done
grep -q 'kernel TLS is available' echo.log || { echo "VM: the echo server did not use kernel TLS"; fail=1; }
grep -E 'WARN|ERROR' echo.log && fail=1
cat /proc/net/tls_stat
awk '$1 == "TlsTxSw" && $2 > 0 { ok = 1 } END { exit !ok }' /proc/net/tls_stat || { echo "VM: no kernel TLS session"; fail=1; }
if [ $fail = 0 ]; then
  echo "VM: PASS"
else
  echo "VM: FAIL"
  tail -40 unit.log
  grep -A15 -E 'panicked|FAILED' tls.log | head -80
  tail -20 echo.log
fi
