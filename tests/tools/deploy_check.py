#!/usr/bin/env python3
"""Static checks of the deployment files (docker-compose.yml, deploy/).

    deploy_check.py [--root DIR] [--confcheck BIN] [--bin DIR] [--only GROUP,...]

--root is a repository checkout (default: this file's repository); the
integration test also runs it on mutated copies and expects it to fail.
--confcheck is tests/tools/deploy_confcheck built against the daemons'
config loaders; --bin holds the built binaries (cc-routes, ldd targets).
--only runs the YAML parse and the named groups of checks (compose, k8s,
configs, dockerfiles, prometheus, grafana, systemd) instead of all of them.
Prints one line per check ("ok: ..." / "FAIL: ..." / "note: ...") and exits
1 when any check failed. Needs python3-yaml, promtool, systemd-analyze
(skipped with a note when absent), haproxy, apt-cache.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

# DESIGN.md "Default local ports", as published by docker-compose.yml. The
# HAProxy trio shares the edge's network namespace, so the edge publishes
# http0/http1 and their cc-gateway ports too.
COMPOSE_PORTS = {
    "postgres": {55432},
    "redis": {56379},
    "migrate": set(),
    "node-btc-a": {18332},
    "node-btc-b": {18333},
    "node-evm-a": {18334},
    "node-evm-b": {18335},
    "edge": {8080, 8443, 8081, 8082, 8404, 8405, 8406, 9100, 9101, 9102},
    "http0": set(),
    "http1": set(),
    "relaystats": {8090},
}
# 8405/8406: the http0/http1 HAProxy exporters (scripts/stack), next to the edge's 8404.
DESIGN_PORTS = {8080, 8443, 8081, 8082, 8404, 8405, 8406, 9100, 9101, 9102, 8090, 55432, 56379}
NODE_PORTS = range(18332, 18340)
GATEWAY_PORTS = {9100, 9101, 9102}
RELAYSTATS_PORT = 8090

# Paths each daemon serves (DESIGN.md, node seed); cross-checked against the
# string literals of the component's sources below.
SERVED = {
    "cc-node": {"/health", "/health/live", "/health/ready", "/health/detailed", "/metrics"},
    "cc-gateway": {"/health", "/health/live", "/health/ready", "/metrics"},
    "relaystats": {"/health", "/health/live", "/health/ready", "/metrics"},
}
COMPONENT_DIR = {"cc-node": "node", "cc-gateway": "gateway", "relaystats": "relaystats"}
BINARIES = {"cc-node": "node", "cc-gateway": "gateway", "cc-routes": "haproxy",
            "relaystats": "relaystats"}

# The node seed's Kubernetes probes (seeds/000_2631aa73846a82b6.txt).
SEED_LIVENESS = {"path": "/health/live", "initialDelaySeconds": 30, "periodSeconds": 10}
SEED_READINESS = {"path": "/health/ready", "initialDelaySeconds": 10, "periodSeconds": 5}

# Libraries every image has (debian:12-slim), not to be listed in a stage.
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5",
                 "libselinux1", "libcrypt1", "libgpg-error0", "libgcrypt20", "libsystemd0",
                 "liblz4-1", "libcap2", "libpcre2-8-0", "libtinfo6"}


class Checker:
    def __init__(self, root, confcheck, bindir):
        self.root = root
        self.confcheck = confcheck
        self.bindir = bindir
        self.failures = 0
        self.tmp = tempfile.mkdtemp(prefix="ccgw-deploy-check.")
        self.docs = {}  # relative path -> list of YAML documents
        self.metrics = None  # metric names in the daemons' sources, read on first use

    def ok(self, msg):
        print(f"ok: {msg}")

    def fail(self, msg):
        self.failures += 1
        print(f"FAIL: {msg}")

    def note(self, msg):
        print(f"note: {msg}")

    def path(self, rel):
        return os.path.join(self.root, rel)

    def rel(self, p):
        return os.path.relpath(p, self.root)

    def run(self, argv, **kw):
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, **kw)

    # ---- YAML ------------------------------------------------------------

    def check_yaml(self):
        files = [self.path("docker-compose.yml")]
        for ext in ("yml", "yaml"):
            files += glob.glob(self.path(f"deploy/**/*.{ext}"), recursive=True)
        for f in sorted(set(files)):
            try:
                with open(f) as fh:
                    self.docs[self.rel(f)] = [d for d in yaml.safe_load_all(fh) if d is not None]
                self.ok(f"{self.rel(f)} parses")
            except (OSError, yaml.YAMLError) as e:
                self.fail(f"{self.rel(f)}: {e}")
        for rel, docs in self.docs.items():
            for d in docs:
                if isinstance(d, dict) and d.get("kind") == "ConfigMap":
                    for key, text in (d.get("data") or {}).items():
                        if key.endswith((".yaml", ".yml")):
                            try:
                                yaml.safe_load(text)
                                self.ok(f"{rel}: ConfigMap data {key} parses")
                            except yaml.YAMLError as e:
                                self.fail(f"{rel}: ConfigMap data {key}: {e}")

    # ---- docker-compose ---------------------------------------------------

    @staticmethod
    def host_ports(svc):
        ports = set()
        for p in svc.get("ports") or []:
            if isinstance(p, dict):
                ports.add(int(p["published"]))
                continue
            parts = str(p).split("/")[0].split(":")
            if len(parts) < 2:
                raise ValueError(f"port {p!r} publishes no fixed host port")
            ports.add(int(parts[-2]))
        return ports

    @staticmethod
    def container_ports(svc):
        out = set()
        for p in svc.get("ports") or []:
            if isinstance(p, dict):
                out.add(int(p["target"]))
            else:
                out.add(int(str(p).split("/")[0].split(":")[-1]))
        return out

    def compose(self):
        docs = self.docs.get("docker-compose.yml")
        if not docs:
            self.fail("docker-compose.yml missing or empty")
            return None
        return docs[0]

    def check_compose_ports(self):
        c = self.compose()
        if not c:
            return
        services = c.get("services") or {}
        if set(services) != set(COMPOSE_PORTS):
            self.fail(f"compose services {sorted(services)} != {sorted(COMPOSE_PORTS)}")
        union = set()
        for name, want in COMPOSE_PORTS.items():
            svc = services.get(name)
            if svc is None:
                continue
            try:
                got = self.host_ports(svc)
            except (ValueError, KeyError) as e:
                self.fail(f"compose {name}: {e}")
                continue
            union |= got
            if got != want:
                self.fail(f"compose {name}: host ports {sorted(got)}, DESIGN.md says {sorted(want)}")
            else:
                self.ok(f"compose {name}: host ports {sorted(got)}")
            if name.startswith("node-") or name in ("edge", "relaystats"):
                if self.container_ports(svc) != got:
                    self.fail(f"compose {name}: container ports differ from host ports")
        if union != DESIGN_PORTS | set(NODE_PORTS[:4]):
            self.fail(f"compose publishes {sorted(union)}")
        # The containers' configs must listen on the published ports.
        conf = self.load_yaml_file("deploy/compose/ccgw.yaml")
        if conf:
            listen = set()
            for t in conf.get("tiers") or []:
                for k in ("bind", "stats_bind", "gateway_listen"):
                    if t.get(k):
                        listen.add(int(str(t[k]).rsplit(":", 1)[1]))
            listen.add(int(str((conf.get("relaystats") or {}).get("listen", ":0")).rsplit(":", 1)[1]))
            if (conf.get("tls") or {}).get("bind"):
                listen.add(int(str(conf["tls"]["bind"]).rsplit(":", 1)[1]))
            want = {8080, 8443, 8081, 8082, 8404, 8405, 8406, 9100, 9101, 9102, 8090}
            if listen != want:
                self.fail(f"deploy/compose/ccgw.yaml listens on {sorted(listen)}, not {sorted(want)}")
            else:
                self.ok("deploy/compose/ccgw.yaml listens on the published ports")
        for name, svc in services.items():
            if not name.startswith("node-"):
                continue
            for v in svc.get("volumes") or []:
                src, _, dst = str(v).partition(":")
                if dst.startswith("/etc/ccgw/node.yaml"):
                    node = self.load_yaml_file(os.path.normpath(src))
                    port = int(str(((node or {}).get("node") or {}).get("listen", ":0")).rsplit(":", 1)[1])
                    if {port} != self.container_ports(svc):
                        self.fail(f"compose {name}: {src} listens on {port}, service publishes "
                                  f"{sorted(self.container_ports(svc))}")
                    else:
                        self.ok(f"compose {name}: {src} listens on {port}")

    def load_yaml_file(self, rel):
        try:
            with open(self.path(rel)) as fh:
                return yaml.safe_load(fh)
        except (OSError, yaml.YAMLError) as e:
            self.fail(f"{rel}: {e}")
            return None

    def check_compose_paths(self):
        c = self.compose()
        if not c:
            return
        volumes = set((c.get("volumes") or {}).keys())
        for name, svc in (c.get("services") or {}).items():
            build = svc.get("build")
            if build:
                ctx = build.get("context", ".") if isinstance(build, dict) else build
                df = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
                if not os.path.isfile(self.path(os.path.join(ctx, df))):
                    self.fail(f"compose {name}: build file {os.path.join(ctx, df)} missing")
            for v in svc.get("volumes") or []:
                src = v.get("source") if isinstance(v, dict) else str(v).split(":")[0]
                if src.startswith((".", "/")):
                    if not os.path.exists(self.path(src)):
                        self.fail(f"compose {name}: volume source {src} does not exist")
                    else:
                        self.ok(f"compose {name}: volume source {src} exists")
                elif src not in volumes:
                    self.fail(f"compose {name}: named volume {src} not declared")
            cmd = svc.get("command")
            if isinstance(cmd, str):
                cmd = shlex.split(cmd)
            if cmd:
                self.check_command(f"compose {name}", cmd)
        for need in ("postgres-data", "gateway-logs"):
            if need not in volumes:
                self.fail(f"compose: volume {need} missing")

    def check_command(self, where, cmd):
        """The program of a container command is a ccgw binary, the tier
        script of deploy/docker or a shell running ccgw binaries."""
        prog = os.path.basename(cmd[0])
        if prog in BINARIES:
            if not os.path.isfile(self.path(f"{BINARIES[prog]}/main.c")):
                self.fail(f"{where}: {prog} has no {BINARIES[prog]}/main.c")
        elif prog == "ccgw-tier":
            if not os.path.isfile(self.path("deploy/docker/ccgw-tier")):
                self.fail(f"{where}: deploy/docker/ccgw-tier missing")
            if len(cmd) < 2 or cmd[1] not in ("edge", "http0", "http1"):
                self.fail(f"{where}: ccgw-tier needs a tier name")
        elif prog == "sh" and len(cmd) >= 3:
            for word in re.findall(r"[a-z][a-z0-9-]*", cmd[2]):
                if word.startswith("cc-") or word == "relaystats":
                    self.check_command(where, [word])
        elif prog not in ("redis-server", "pg_isready"):
            self.fail(f"{where}: unknown program {cmd[0]}")

    # ---- health checks ------------------------------------------------------

    def served_paths(self, daemon):
        """DESIGN.md's paths that the component's sources route: a literal
        "/health/ready", or a "/health/" prefix dispatched on "ready"."""
        literals = set()
        for s in glob.glob(self.path(f"{COMPONENT_DIR[daemon]}/*.c")):
            with open(s, errors="replace") as fh:
                literals |= set(re.findall(r'"([^"\\\n]{1,40})"', fh.read()))
        if not any(lit.startswith("/health") for lit in literals):
            self.note(f"{daemon}: no /health paths found in {COMPONENT_DIR[daemon]}/*.c yet, "
                      f"using DESIGN.md's list")
            return set(SERVED[daemon])
        served = set()
        for p in SERVED[daemon]:
            if p in literals or (p.startswith("/health/") and "/health/" in literals
                                 and p[len("/health/"):] in literals):
                served.add(p)
        if served != SERVED[daemon]:
            self.note(f"{daemon} sources do not (yet) route {sorted(SERVED[daemon] - served)}")
        return served

    def daemon_of_port(self, port):
        if port in NODE_PORTS:
            return "cc-node"
        if port in GATEWAY_PORTS:
            return "cc-gateway"
        if port == RELAYSTATS_PORT:
            return "relaystats"
        return None

    def check_health_path(self, where, port, path):
        daemon = self.daemon_of_port(port)
        if daemon is None:
            self.fail(f"{where}: health check on port {port}, which no ccgw daemon serves")
            return
        if not path.startswith("/health/") and path != "/health":
            self.fail(f"{where}: health check {path} is not a /health endpoint")
        elif path not in self.served[daemon]:
            self.fail(f"{where}: {daemon} does not serve {path}")
        else:
            self.ok(f"{where}: {daemon} serves {path}")

    def check_compose_health(self):
        c = self.compose()
        if not c:
            return
        for name, svc in (c.get("services") or {}).items():
            hc = svc.get("healthcheck")
            if name == "migrate":
                continue
            if not hc or not hc.get("test"):
                self.fail(f"compose {name}: no healthcheck")
                continue
            test = " ".join(hc["test"]) if isinstance(hc["test"], list) else hc["test"]
            m = re.search(r"http://[^:/]+:(\d+)(/[^ \"']*)", test)
            if m:
                self.check_health_path(f"compose {name}", int(m.group(1)), m.group(2))
            elif name not in ("postgres", "redis"):
                self.fail(f"compose {name}: healthcheck does not query an HTTP endpoint")

    # ---- Kubernetes ---------------------------------------------------------

    def k8s_objects(self):
        out = []
        for rel, docs in self.docs.items():
            if rel.startswith("deploy/k8s/"):
                for d in docs:
                    if isinstance(d, dict) and "kind" in d:
                        out.append((rel, d))
        return out

    def check_k8s(self):
        objs = self.k8s_objects()
        kinds = {d["kind"] for _, d in objs}
        for need in ("Namespace", "ConfigMap", "Service", "StatefulSet", "Deployment"):
            if need not in kinds:
                self.fail(f"deploy/k8s: no {need}")
        configmaps = {d["metadata"]["name"]: d for _, d in objs if d["kind"] == "ConfigMap"}
        secrets = {d["metadata"]["name"]: d for _, d in objs if d["kind"] == "Secret"}
        pg = [d for _, d in objs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "postgres"]
        if not pg or not pg[0]["spec"].get("volumeClaimTemplates"):
            self.fail("deploy/k8s: postgres must be a StatefulSet with a volume claim")
        kust = self.docs.get("deploy/k8s/kustomization.yaml")
        if kust:
            for r in kust[0].get("resources") or []:
                if not os.path.isfile(self.path(f"deploy/k8s/{r}")):
                    self.fail(f"deploy/k8s/kustomization.yaml: resource {r} missing")
            listed = {f"deploy/k8s/{r}" for r in kust[0].get("resources") or []}
            for rel in self.docs:
                if rel.startswith("deploy/k8s/") and rel != "deploy/k8s/kustomization.yaml" \
                        and rel not in listed:
                    self.fail(f"{rel} is not listed in deploy/k8s/kustomization.yaml")
        seen_node = 0
        for rel, d in objs:
            if d["kind"] not in ("Deployment", "StatefulSet", "Job"):
                continue
            spec = d["spec"]["template"]["spec"]
            vols = {v["name"]: v for v in spec.get("volumes") or []}
            claims = {t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates") or []}
            for ctr in spec.get("containers") or []:
                where = f"{rel} {d['kind']}/{d['metadata']['name']} container {ctr['name']}"
                cmd = ctr.get("command") or ctr.get("args")
                if str(ctr.get("image", "")).split(":")[0] == "ccgw" and cmd:
                    self.check_command(where, cmd)
                self.check_k8s_refs(where, ctr, vols, claims, configmaps, secrets)
                daemon = None
                if cmd:
                    daemon = {"cc-node": "cc-node", "ccgw-tier": "cc-gateway"}.get(
                        os.path.basename(cmd[0]))
                    if cmd[0] == "relaystats" and "serve" in cmd:
                        daemon = "relaystats"
                if daemon is None:
                    continue
                for kind in ("livenessProbe", "readinessProbe"):
                    probe = ctr.get(kind)
                    if not probe or "httpGet" not in probe:
                        self.fail(f"{where}: no HTTP {kind}")
                        continue
                    self.check_health_path(f"{where} {kind}", int(probe["httpGet"]["port"]),
                                           probe["httpGet"]["path"])
                if daemon == "cc-node":
                    seen_node += 1
                    for kind, seed in (("livenessProbe", SEED_LIVENESS),
                                       ("readinessProbe", SEED_READINESS)):
                        p = ctr.get(kind) or {}
                        got = {"path": (p.get("httpGet") or {}).get("path"),
                               "initialDelaySeconds": p.get("initialDelaySeconds"),
                               "periodSeconds": p.get("periodSeconds")}
                        if got != seed:
                            self.fail(f"{where}: {kind} {got} differs from the node seed {seed}")
                        else:
                            self.ok(f"{where}: {kind} as in the node seed")
        if seen_node != 4:
            self.fail(f"deploy/k8s: {seen_node} cc-node containers, expected 4")

    def check_k8s_refs(self, where, ctr, vols, claims, configmaps, secrets):
        for m in ctr.get("volumeMounts") or []:
            name = m["name"]
            if name in claims:
                continue
            v = vols.get(name)
            if v is None:
                self.fail(f"{where}: volume {name} not defined")
                continue
            if "secret" in v:
                if v["secret"]["secretName"] not in secrets:
                    self.fail(f"{where}: Secret {v['secret']['secretName']} not defined")
                else:
                    self.ok(f"{where}: mount {m['mountPath']} resolves")
            if "configMap" in v:
                cm = configmaps.get(v["configMap"]["name"])
                if cm is None:
                    self.fail(f"{where}: ConfigMap {v['configMap']['name']} not defined")
                elif m.get("subPath") and m["subPath"] not in (cm.get("data") or {}):
                    self.fail(f"{where}: ConfigMap {v['configMap']['name']} has no {m['subPath']}")
                else:
                    self.ok(f"{where}: mount {m['mountPath']} resolves")
        for e in ctr.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                s = secrets.get(ref["name"])
                if s is None or ref["key"] not in (s.get("stringData") or s.get("data") or {}):
                    self.fail(f"{where}: secret key {ref['name']}/{ref['key']} not defined")
        for e in ctr.get("envFrom") or []:
            if "secretRef" in e and e["secretRef"]["name"] not in secrets:
                self.fail(f"{where}: secret {e['secretRef']['name']} not defined")

    # ---- configs through the real loaders ------------------------------------

    def deploy_configs(self):
        """(kind, path) of every ccgw/node config the deployment ships,
        ConfigMap entries written to temp files."""
        out = [("ccgw", self.path("deploy/compose/ccgw.yaml"))]
        out += [("node", p) for p in sorted(glob.glob(self.path("deploy/compose/node-*.yaml")))]
        for rel, d in self.k8s_objects():
            if d["kind"] != "ConfigMap":
                continue
            for key, text in (d.get("data") or {}).items():
                if not key.endswith(".yaml"):
                    continue
                p = os.path.join(self.tmp, f"{d['metadata']['name']}-{key}")
                with open(p, "w") as fh:
                    fh.write(text)
                out.append(("node" if key.startswith("node") else "ccgw", p))
        return out

    def check_configs(self):
        configs = self.deploy_configs()
        if not self.confcheck:
            self.note("no --confcheck: deployment configs not checked by the daemons' loaders")
        else:
            for kind, p in configs:
                r = self.run([self.confcheck, kind, p])
                name = self.rel(p) if p.startswith(self.root) else os.path.basename(p)
                if r.returncode != 0:
                    self.fail(f"{name}: refused by the {kind} loader: {r.stdout.strip()}")
                else:
                    self.ok(f"{name}: accepted by the {kind} config loader")
        routes = os.path.join(self.bindir, "cc-routes") if self.bindir else None
        if not routes or not os.access(routes, os.X_OK):
            self.note("no cc-routes binary: HAProxy configs of the deployment not rendered")
            return
        # Render with the service names pointed at loopback: every tier's
        # HAProxy config must pass `haproxy -c` (cc-routes runs it).
        hosts = {"node-btc-a", "node-btc-b", "node-evm-a", "node-evm-b", "postgres", "redis"}
        for kind, p in configs:
            if kind != "ccgw":
                continue
            with open(p) as fh:
                text = fh.read()
            for h in hosts:
                text = re.sub(rf"\b{h}:(?=\d)", "127.0.0.1:", text)
            text = text.replace("/var/lib/ccgw", self.tmp).replace("/var/log/ccgw", self.tmp)
            # The certificates the deployment mounts at /etc/ccgw/tls: made
            # here by the local CA for the config's domain and chains.
            if "/etc/ccgw/tls/" in text:
                tls = self.local_certs(yaml.safe_load(text))
                if tls is None:
                    continue
                text = text.replace("/etc/ccgw/tls", tls)
            q = os.path.join(self.tmp, "render-" + os.path.basename(p))
            with open(q, "w") as fh:
                fh.write(text)
            r = self.run([routes, "check", "--config", q], cwd=self.root)
            name = self.rel(p) if p.startswith(self.root) else os.path.basename(p)
            if r.returncode != 0:
                self.fail(f"{name}: cc-routes check: {r.stdout.strip()}")
            else:
                self.ok(f"{name}: cc-routes renders configs haproxy -c accepts")

    def local_certs(self, conf):
        """scripts/local-ca certificates for every chain of `conf`, in a temp
        dir (its path), or None after a failure."""
        d = os.path.join(self.tmp, "tls")
        domain = ((conf or {}).get("gateway") or {}).get("routing_domain", "")
        chains = [str(c["id"]) for c in (conf or {}).get("chains") or []]
        r = self.run([self.path("scripts/local-ca"), d, "ensure", domain.lower()] + chains)
        if r.returncode != 0:
            self.fail(f"scripts/local-ca for {domain} {chains}: {r.stdout.strip()}")
            return None
        return d

    # ---- Dockerfile -----------------------------------------------------------

    def dockerfiles(self):
        return sorted(glob.glob(self.path("deploy/**/Dockerfile*"), recursive=True))

    @staticmethod
    def instructions(text):
        out, cur = [], ""
        for line in text.splitlines():
            s = line.strip()
            if not cur and (not s or s.startswith("#")):
                continue
            if cur and s.startswith("#"):
                continue
            cur += " " + s.rstrip("\\").strip() if cur else s.rstrip("\\").strip()
            if not s.endswith("\\"):
                out.append(cur)
                cur = ""
        if cur:
            out.append(cur)
        return out

    def check_dockerfiles(self):
        files = [f for f in self.dockerfiles() if not f.endswith(".dockerignore")]
        if not files:
            self.fail("no Dockerfile under deploy/")
        for f in files:
            rel = self.rel(f)
            with open(f) as fh:
                ins = self.instructions(fh.read())
            first = next((i for i in ins if not i.upper().startswith("ARG ")), "")
            if not first.upper().startswith("FROM "):
                self.fail(f"{rel}: first instruction is not FROM: {first[:40]}")
            stages, packages, final_user = [], [], None
            ignore = self.dockerignore(f)
            for i in ins:
                op, _, arg = i.partition(" ")
                op = op.upper()
                if op == "FROM":
                    image = arg.split()[0]
                    stages.append([])
                    final_user = None
                    if image.split("@")[0].rsplit("/", 1)[-1].count(":") == 0 and "@" not in image:
                        self.fail(f"{rel}: FROM {image} has no tag")
                    elif image.endswith(":latest"):
                        self.fail(f"{rel}: FROM {image} uses the latest tag")
                    else:
                        self.ok(f"{rel}: FROM {image} pinned")
                elif op == "RUN" and re.search(r"apt-get\s+install", arg):
                    if "apt-get update" not in arg:
                        self.fail(f"{rel}: apt-get install without apt-get update in the same RUN")
                    if not re.search(r"rm -rf /var/lib/apt/lists/\*?", arg):
                        self.fail(f"{rel}: apt lists not cleaned in the RUN that installs")
                    else:
                        self.ok(f"{rel}: apt lists cleaned")
                    if "--no-install-recommends" not in arg:
                        self.fail(f"{rel}: apt-get install without --no-install-recommends")
                    m = re.search(r"apt-get\s+install\s+(.*?)(&&|$)", arg)
                    pk = [w for w in m.group(1).split() if not w.startswith("-")]
                    stages[-1].extend(pk)
                    packages.extend(pk)
                elif op == "COPY":
                    words = [w for w in arg.split() if not w.startswith("--")]
                    if "--from=" in arg:
                        continue
                    for src in words[:-1]:
                        if not os.path.exists(self.path(src)):
                            self.fail(f"{rel}: COPY source {src} does not exist")
                        elif ignore is not None and not self.dockerignore_keeps(ignore, src):
                            self.fail(f"{rel}: COPY source {src} is excluded by the dockerignore")
                        else:
                            self.ok(f"{rel}: COPY source {src} exists")
                elif op == "USER":
                    final_user = arg.strip()
            if final_user in (None, "root", "0", "0:0"):
                self.fail(f"{rel}: the final stage runs as root")
            self.check_packages(rel, packages)
            if len(stages) >= 2:
                self.check_build_headers(rel, set(stages[0]))
                self.check_runtime_libs(rel, set(stages[-1]))

    def dockerignore(self, dockerfile):
        p = dockerfile + ".dockerignore"
        if not os.path.isfile(p):
            p = self.path(".dockerignore")
        if not os.path.isfile(p):
            return None
        with open(p) as fh:
            return [l.strip() for l in fh if l.strip() and not l.startswith("#")]

    @staticmethod
    def dockerignore_keeps(patterns, src):
        src = src.rstrip("/")
        keep = True
        for pat in patterns:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").rstrip("/")
            if pat == "*" or src == pat or src.startswith(pat + "/"):
                keep = neg
        return keep

    def check_packages(self, rel, packages):
        if not shutil.which("apt-cache"):
            self.note("apt-cache absent: Debian package names not checked")
            return
        wanted = sorted(set(packages))
        r = self.run(["apt-cache", "show", "--no-all-versions"] + wanted)
        known = set(re.findall(r"^Package: (\S+)", r.stdout, re.M))
        for p in wanted:
            if p not in known:
                self.fail(f"{rel}: {p} is not a Debian 12 package")
        self.ok(f"{rel}: {len(set(packages))} apt packages exist in Debian")

    def check_build_headers(self, rel, build):
        """Every system header the C sources include comes from a package the
        build stage installs (or from what those pull in)."""
        headers = set()
        for comp in ("lib", "gateway", "haproxy", "node", "relaystats", "tests/unit"):
            for src in glob.glob(self.path(f"{comp}/*.[ch]")):
                with open(src, errors="replace") as fh:
                    headers |= set(re.findall(r"^#\s*include\s*<([^>]+)>", fh.read(), re.M))
        paths = [p for p in (os.path.join("/usr/include", h) for h in sorted(headers))
                 if os.path.isfile(p)]
        r = self.run(["dpkg", "-S"] + paths)
        owners = {}
        for pkgs, path in re.findall(r"^(\S+): (/\S+)$", r.stdout, re.M):
            for pkg in pkgs.split(","):
                owners.setdefault(pkg.split(":")[0], set()).add(os.path.relpath(path, "/usr/include"))
        closure = self.depends_closure(build) | build
        missing = {p: h for p, h in owners.items() if p not in closure}
        for p, h in sorted(missing.items()):
            self.fail(f"{rel}: build stage lacks {p} (for {', '.join(sorted(h)[:3])})")
        if not missing:
            self.ok(f"{rel}: build stage provides the {len(owners)} header packages of the sources")

    def check_runtime_libs(self, rel, runtime):
        """Every shared library the built binaries link comes from a package
        the runtime stage installs (or from the base image)."""
        bins = [os.path.join(self.bindir, b) for b in BINARIES] if self.bindir else []
        bins = [b for b in bins if os.access(b, os.X_OK)]
        if not bins:
            self.note("no built binaries: runtime libraries of the image not checked")
            return
        runtime = set(runtime) | {"haproxy"}
        libs = {}  # library path -> binaries linking it
        for b in bins:
            r = self.run(["ldd", b])
            for lib in re.findall(r"=> (/\S+)", r.stdout):
                if "libasan" not in lib and "libubsan" not in lib:
                    libs.setdefault(lib, set()).add(os.path.basename(b))
        # One dpkg -S over every path (as linked and resolved; merged /usr).
        names = {}
        for lib in libs:
            for q in {lib, os.path.realpath(lib), lib.replace("/lib/", "/usr/lib/", 1)}:
                names[q] = lib
        r = self.run(["dpkg", "-S"] + sorted(names))
        needed, owned = {}, set()
        for pkgs, path in re.findall(r"^(\S+): (/\S+)$", r.stdout, re.M):
            if path not in names:
                continue
            owned.add(names[path])
            for pkg in pkgs.split(","):
                needed.setdefault(pkg.split(":")[0], set()).update(libs[names[path]])
        for lib in sorted(set(libs) - owned):
            self.fail(f"{rel}: {lib} belongs to no Debian package")
        closure = self.depends_closure(runtime)
        missing = {p: b for p, b in needed.items()
                   if p not in runtime and p not in BASE_PACKAGES and p not in closure}
        for p, b in sorted(missing.items()):
            self.fail(f"{rel}: runtime stage lacks {p} (needed by {', '.join(sorted(b))})")
        if not missing:
            self.ok(f"{rel}: runtime stage provides the {len(needed)} library packages of "
                    f"{len(bins)} binaries")

    def depends_closure(self, packages):
        """Every package the given ones pull in through Depends/PreDepends."""
        r = self.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                      "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"]
                     + sorted(packages))
        deps = set(re.findall(r"^\s*(?:Depends|PreDepends): <?([^\s>:]+)", r.stdout, re.M))
        return deps | set(re.findall(r"^([^\s:<]+)$", r.stdout, re.M))

    # ---- Prometheus --------------------------------------------------------

    def code_metrics(self):
        names = set()
        # haproxy/: cc-routes renders the edge's certificate metric.
        for comp in ("gateway", "node", "relaystats", "haproxy"):
            for s in glob.glob(self.path(f"{comp}/*.c")):
                with open(s, errors="replace") as fh:
                    names |= set(re.findall(r'"((?:ccgw|ccnode|relaystats)_[a-z0-9_]+)"', fh.read()))
        return names

    def haproxy_metrics(self):
        """Metric names of HAProxy 2.6's exporter, from a throwaway HAProxy."""
        if not shutil.which("haproxy"):
            return None
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        cfg = os.path.join(self.tmp, "exporter.cfg")
        with open(cfg, "w") as fh:
            fh.write("defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n"
                     "  timeout server 1s\nfrontend stats\n"
                     f"  bind 127.0.0.1:{port}\n"
                     "  http-request use-service prometheus-exporter if { path /metrics }\n"
                     "backend be_x\n  server s1 127.0.0.1:1 check backup\n")
        proc = subprocess.Popen(["haproxy", "-f", cfg], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            for _ in range(50):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                        text = r.read().decode()
                    return set(re.findall(r"^# TYPE (\S+)", text, re.M))
                except OSError:
                    time.sleep(0.1)
            return None
        finally:
            proc.terminate()
            proc.wait()

    def check_metric_names(self, where, exprs):
        if self.metrics is None:
            self.metrics = self.code_metrics()
            self.metrics_haproxy = self.haproxy_metrics()
        for e in exprs:
            for name in re.findall(r"\b((?:ccgw|ccnode|relaystats|haproxy)_[a-z0-9_]+)", e):
                if name.startswith("haproxy_"):
                    if self.metrics_haproxy is not None and name not in self.metrics_haproxy:
                        self.fail(f"{where}: {name} is not a metric of HAProxy's exporter")
                elif self.metrics and name not in self.metrics:
                    self.fail(f"{where}: {name} is not exported by gateway/, node/, relaystats/ or haproxy/")
        if not self.metrics:
            self.note(f"{where}: no metric names found in the sources yet")
        else:
            self.ok(f"{where}: every metric name is exported by a daemon")

    def check_prometheus(self):
        if not shutil.which("promtool"):
            self.fail("promtool not installed (Debian package prometheus)")
            return
        for argv in (["check", "config", "deploy/prometheus/prometheus.yml"],
                     ["check", "rules", "deploy/prometheus/alerts.yml"],
                     ["test", "rules", "deploy/prometheus/alerts_test.yml"]):
            r = self.run(["promtool"] + argv, cwd=self.root)
            if r.returncode != 0:
                self.fail(f"promtool {' '.join(argv)}: {r.stdout.strip()[-600:]}")
            else:
                self.ok(f"promtool {' '.join(argv)}")
        prom = (self.docs.get("deploy/prometheus/prometheus.yml") or [{}])[0]
        targets = set()
        for sc in prom.get("scrape_configs") or []:
            for st in sc.get("static_configs") or []:
                for t in st.get("targets") or []:
                    host, _, port = t.rpartition(":")
                    if host != "127.0.0.1":
                        self.fail(f"prometheus.yml: target {t} is not on the local stack")
                    targets.add(int(port))
        # 8404 twice: the edge's exporter and its certificate expiry (/metrics/tls).
        want = {8404, 8405, 8406, 9100, 9101, 9102, 8090} | set(NODE_PORTS[:4])
        if targets != want:
            self.fail(f"prometheus.yml scrapes {sorted(targets)}, the stack serves {sorted(want)}")
        else:
            self.ok("prometheus.yml scrapes HAProxy, every cc-gateway, cc-node and relaystats")
        alerts = (self.docs.get("deploy/prometheus/alerts.yml") or [{}])[0]
        exprs = [r["expr"] for g in alerts.get("groups") or [] for r in g.get("rules") or []]
        self.check_metric_names("alerts.yml", exprs)

    # ---- Grafana -----------------------------------------------------------

    def check_grafana(self):
        rel = "deploy/grafana/ccgw-dashboard.json"
        try:
            with open(self.path(rel)) as fh:
                dash = json.load(fh)
        except (OSError, ValueError) as e:
            self.fail(f"{rel}: {e}")
            return
        self.ok(f"{rel} parses")

        def walk(panels):
            for p in panels:
                yield p
                yield from walk(p.get("panels") or [])

        exprs = []
        panels = list(walk(dash.get("panels") or []))
        if not panels:
            self.fail(f"{rel}: no panels")
        for p in panels:
            if p.get("type") == "row":
                continue
            title = p.get("title", f"id {p.get('id')}")
            if not p.get("datasource"):
                self.fail(f"{rel}: panel '{title}' has no datasource")
            targets = p.get("targets") or []
            if not targets:
                self.fail(f"{rel}: panel '{title}' has no targets")
            for t in targets:
                if not str(t.get("expr", "")).strip():
                    self.fail(f"{rel}: panel '{title}' has a target without expr")
                else:
                    exprs.append(t["expr"])
        # PromQL syntax: promtool parses every expression as a recording rule.
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
        f = os.path.join(self.tmp, "dashboard-rules.yml")
        with open(f, "w") as fh:
            yaml.safe_dump(rules, fh)
        r = self.run(["promtool", "check", "rules", f])
        if r.returncode != 0:
            self.fail(f"{rel}: an expr is not valid PromQL: {r.stdout.strip()[-400:]}")
        else:
            self.ok(f"{rel}: {len(exprs)} exprs in {len(panels)} panels are valid PromQL")
        self.check_metric_names(rel, exprs)
        wanted = {"relays": r"ccgw_gateway_relays_total", "non-relays": r"ccgw_gateway_non_relays_total",
                  "dropped logs": r"haproxy_dropped_logs", "flush age": r"last_flush_timestamp",
                  "node height": r"ccnode_chain_height", "node peers": r"ccnode_peers_connected",
                  "node RPC rate": r"ccnode_rpc_requests_total", "429s": r"ccnode_rate_limited",
                  "HAProxy backends": r"haproxy_(backend|server)_"}
        for what, pat in wanted.items():
            if not any(re.search(pat, e) for e in exprs):
                self.fail(f"{rel}: no panel shows {what}")

    # ---- systemd -------------------------------------------------------------

    def check_systemd(self):
        units = sorted(glob.glob(self.path("deploy/systemd/*.service"))) + \
            sorted(glob.glob(self.path("deploy/systemd/*.target")))
        names = {os.path.basename(u) for u in units}
        for need in ("cc-node@.service", "cc-gateway@.service", "relaystats.service"):
            if need not in names:
                self.fail(f"deploy/systemd/{need} missing")
        for u in units:
            if not u.endswith(".service"):
                continue
            rel = self.rel(u)
            with open(u) as fh:
                text = fh.read()
            kv = {}
            for line in text.splitlines():
                if "=" in line and not line.startswith(("#", ";")):
                    k, _, v = line.partition("=")
                    kv.setdefault(k.strip(), []).append(v.strip())
            # cc-gateway's supervisor is restarted whatever ended it: while
            # it is down, its HAProxy is too (parent-death signal)
            restart = "always" if "cc-gateway" in rel else "on-failure"
            for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                         ("Restart", restart), ("KillSignal", "SIGTERM")):
                if v not in kv.get(k, []):
                    self.fail(f"{rel}: {k}={v} missing")
            if "cc-gateway" in rel and "KillMode" in kv and kv["KillMode"] != ["mixed"]:
                self.fail(f"{rel}: KillMode must be mixed (SIGTERM to the supervisor only)")
            if "cc-gateway" in rel and not any("--restart" in c for c in kv.get("ExecStart", [])):
                self.fail(f"{rel}: cc-gateway without --restart leaves its tier down when HAProxy dies")
            if not kv.get("ReadWritePaths"):
                self.fail(f"{rel}: no ReadWritePaths")
            stop = int((kv.get("TimeoutStopSec") or ["0"])[0].rstrip("s") or 0)
            if "cc-gateway" in rel and stop <= 60:
                self.fail(f"{rel}: TimeoutStopSec={stop} leaves no time for the final flush "
                          f"after a 60 s retry backoff")
            for k in ("ExecStart", "ExecStartPre"):
                for cmd in kv.get(k, []):
                    prog = os.path.basename(shlex.split(cmd.lstrip("-@+!"))[0])
                    if prog in BINARIES and not os.path.isfile(self.path(f"{BINARIES[prog]}/main.c")):
                        self.fail(f"{rel}: {prog} is not a binary of this repository")
                    elif prog not in BINARIES:
                        self.fail(f"{rel}: {k} runs {prog}, not a ccgw binary")
            self.ok(f"{rel}: hardening, restart and stop settings present")
        if not shutil.which("systemd-analyze"):
            self.note("systemd-analyze is not installed: unit verification SKIPPED")
            return
        root = os.path.join(self.tmp, "sysroot")
        os.makedirs(os.path.join(root, "usr/local/bin"))
        os.makedirs(os.path.join(root, "usr/sbin"))
        os.makedirs(os.path.join(root, "etc/systemd/system"))
        os.makedirs(os.path.join(root, "usr/lib/systemd"))
        shutil.copytree("/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"),
                        symlinks=True)
        for b in list(BINARIES) + ["../../sbin/haproxy"]:
            p = os.path.normpath(os.path.join(root, "usr/local/bin", b))
            with open(p, "w") as fh:
                fh.write("#!/bin/sh\n")
            os.chmod(p, 0o755)
        for u in units:
            shutil.copy(u, os.path.join(root, "etc/systemd/system"))
        instances = [n.replace("@.", "@test.") for n in sorted(names)]
        r = self.run(["systemd-analyze", "verify", f"--root={root}"] + instances)
        if r.returncode != 0 or r.stdout.strip():
            self.fail(f"systemd-analyze verify: {r.stdout.strip()[-800:]}")
        else:
            self.ok(f"systemd-analyze verify: {len(instances)} units clean")
        for n in instances:
            if not n.endswith(".service"):
                continue
            r = self.run(["systemd-analyze", "security", "--offline=yes", f"--root={root}",
                          "--threshold=30", n])
            score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
            if r.returncode != 0:
                self.fail(f"systemd-analyze security {n}: exposure "
                          f"{score.group(1) if score else '?'} above 3.0")
            else:
                self.ok(f"systemd-analyze security {n}: exposure {score.group(1) if score else '?'}")

    def main(self, only):
        groups = {
            "compose": (self.check_compose_ports, self.check_compose_paths,
                        self.check_compose_health),
            "k8s": (self.check_k8s,),
            "configs": (self.check_configs,),
            "dockerfiles": (self.check_dockerfiles,),
            "prometheus": (self.check_prometheus,),
            "grafana": (self.check_grafana,),
            "systemd": (self.check_systemd,),
        }
        unknown = set(only) - set(groups)
        if unknown:
            print(f"deploy-check: unknown --only group(s) {', '.join(sorted(unknown))}",
                  file=sys.stderr)
            return 2
        self.check_yaml()
        self.served = {d: self.served_paths(d) for d in SERVED}
        for name, checks in groups.items():
            if not only or name in only:
                for check in checks:
                    check()
        shutil.rmtree(self.tmp, ignore_errors=True)
        print(f"deploy-check: {self.failures} failed")
        return 1 if self.failures else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.normpath(os.path.join(here, "../..")))
    ap.add_argument("--confcheck")
    ap.add_argument("--bin")
    ap.add_argument("--only", default="", help="comma-separated groups of checks")
    a = ap.parse_args()
    return Checker(os.path.abspath(a.root), a.confcheck and os.path.abspath(a.confcheck),
                   a.bin and os.path.abspath(a.bin)).main([g for g in a.only.split(",") if g])


if __name__ == "__main__":
    sys.exit(main())
