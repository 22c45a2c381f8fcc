# Run inside the VM of `tools/ktls/vm.sh bench` (busybox sh, in /tmp):
# user-space rustls (echo-user) against kernel TLS (echo-ktls), A B A B,
# the server on CPU 0 and ringcast-bench on CPU 1. One BENCH line per
# result; the host script prints them. Under software emulation the
# figures compare the two with each other, not with real hardware.
ca=/certs/cert.pem
url=wss://127.0.0.1:9443/
start() {
  taskset -c 0 /bin/$1 --listen 127.0.0.1:9443 --shards 1 --tls-cert $ca --tls-key /certs/key.pem > server.log 2>&1 &
  pid=$!
  sleep 1
}
stop() { kill $pid; wait $pid 2>/dev/null; }
# The server's CPU time so far, in clock ticks (utime + stime).
ticks() { awk '{ print $14 + $15 }' /proc/$pid/stat; }
field() { grep -o "\"$1\":[0-9.]*" "$2" | head -1 | cut -d: -f2; }
kb() { awk -v k="$1:" '$1 == k { print $2 }' "$2"; }

for round in 1 2 3; do
  for server in echo-user echo-ktls; do
    start $server
    for case in "100 20" "20 16384"; do
      set -- $case
      before=$(ticks)
      taskset -c 1 /bin/ringcast-bench echo --url $url --tls-ca $ca --connections $1 --size $2 \
        --duration 4 --warmup 0 --json out.json > /dev/null 2>&1
      after=$(ticks)
      echo "BENCH echo round=$round server=$server connections=$1 size=$2 msgs=$(field messages out.json)" \
        "per_s=$(field msgs_per_sec out.json) errors=$(field errors out.json) server_ticks=$((after - before))"
    done
    stop
  done
done

# Idle memory: the slope between 1 000 and 2 000 held connections (the
# first batch's handshakes leave the allocator's high-water mark behind;
# the second batch reuses it), RSS of the server and the kernel's slab.
n=1000
hold() {
  taskset -c 1 /bin/ringcast-bench connections --url $url --tls-ca $ca --connections $n --hold 60 \
    --ping-interval 0 --warmup 0 --duration 1 > conn.log 2>&1 &
  clients="$clients $!"
  want=$(($(ls /proc/$pid/fd | wc -l) + n))
  waited=0
  while [ "$(ls /proc/$pid/fd | wc -l)" -lt $want ] && [ $waited -lt 120 ]; do
    sleep 1
    waited=$((waited + 1))
  done
  sleep 2
}
for round in 1 2; do
  for server in echo-user echo-ktls; do
    start $server
    clients=""
    hold
    rss1=$(kb VmRSS /proc/$pid/status)
    slab1=$(kb Slab /proc/meminfo)
    fds1=$(ls /proc/$pid/fd | wc -l)
    hold
    rss2=$(kb VmRSS /proc/$pid/status)
    slab2=$(kb Slab /proc/meminfo)
    held=$(($(ls /proc/$pid/fd | wc -l) - fds1))
    echo "BENCH idle round=$round server=$server connections=$held" \
      "rss_bytes_per_conn=$(((rss2 - rss1) * 1024 / held)) slab_bytes_per_conn=$(((slab2 - slab1) * 1024 / held))"
    kill $clients
    wait $clients 2>/dev/null
    stop
  done
done
cat /proc/net/tls_stat | grep -E 'TlsTxSw|TlsDecryptError'
echo "VM: bench done"
