# Helpers shared by bench/run.sh and bench/parallel.sh (sourced, not run).

# A TCP port free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts nginx as the benchmarks' CDN on 127.0.0.1:PORT, serving DIR/nginx (files go in
# DIR/nginx/cdn/) with sendfile, one worker, no logs, and keep-alive connections that carry any
# number of requests (range requests of the parallel path reuse them). Sets $nginx_pid; returns
# non-zero if nginx did not come up.
#   start_nginx DIR PORT
start_nginx() {
  local dir=$1/nginx port=$2
  mkdir -p "$dir/cdn" "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 512; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path $dir/tmp;
  server { listen 127.0.0.1:$port; root $dir; }
}
EOF
  nginx -p "$dir" -c "$dir/nginx.conf" 2>>"$dir/error.log" &
  nginx_pid=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  kill -0 "$nginx_pid" 2>/dev/null
}

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
calc() { echo "$1" | bc -l; }
