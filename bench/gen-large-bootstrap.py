#!/usr/bin/env python3
"""Writes a bootstrap with N static clusters and N routes (one route per cluster) to stdout.

usage: gen-large-bootstrap.py [N]    (default 1000)
"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
out = sys.stdout.write
out("admin:\n  address: {socket_address: {address: 127.0.0.1, port_value: 9901}}\n")
out("static_resources:\n  listeners:\n  - name: main\n")
out("    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}\n")
out("    filter_chains:\n    - filters:\n      - name: envoy.filters.network.http_connection_manager\n")
out("        typed_config:\n")
out('          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n')
out("          stat_prefix: main\n          http_filters:\n          - name: envoy.filters.http.router\n")
out('            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n')
out("          route_config:\n            name: routes\n            virtual_hosts:\n            - name: all\n")
out('              domains: ["*"]\n              routes:\n')
for i in range(n):
    out(f"              - name: r{i}\n                match: {{prefix: \"/svc{i}/\"}}\n")
    out(f"                route: {{cluster: c{i}, timeout: 2.5s}}\n")
out("  clusters:\n")
for i in range(n):
    out(f"  - name: c{i}\n    type: STATIC\n    connect_timeout: 0.25s\n    lb_policy: ROUND_ROBIN\n")
    out(f"    load_assignment:\n      cluster_name: c{i}\n      endpoints:\n      - lb_endpoints:\n")
    out(f"        - endpoint: {{address: {{socket_address: {{address: 127.0.0.{1 + i % 250}, port_value: {8000 + i}}}}}}}\n")
