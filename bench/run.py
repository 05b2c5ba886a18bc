#!/usr/bin/env python3
"""certwright benchmark: N certificates over M files targets.

Measures, each in a fresh git repository and keystore:
  - first apply (issue + store encrypted keys + deploy + report): certificates/second,
    for ECDSA P-256 and RSA-2048, and issuance alone (keys generated, signed, stored
    encrypted and recorded) from the engine's own timing line (-v);
  - a no-op plan over everything afterwards: wall time and peak memory (RSS).
Not a test: numbers go to stdout and bench/README.md records what was measured.

usage: bench/run.py [--certs N] [--targets M] [--keys ecdsa-p256,rsa-2048] [--binary PATH]
"""
import argparse, os, re, resource, shutil, subprocess, sys, tempfile, time

def inventory(n, m, key, out):
    lines = ["version: 1", "defaults:", "  issuer: bench-ca", f"  key: {key}", "  lifetime: 90d",
             "authorities:", "  bench-ca:", '    subject: "CN=Bench CA"', "    key: ecdsa-p256",
             "    lifetime: 3650d", "certificates:"]
    for i in range(n):
        lines += [f"  c{i:05d}:", f'    sans: ["DNS:c{i:05d}.bench.test"]',
                  "    deploy:", f"      - target: t{i % m:03d}"]
    lines.append("targets:")
    for t in range(m):
        lines += [f"  t{t:03d}:", "    type: files", f'    path: "{out}/t{t:03d}"']
    return "\n".join(lines) + "\n"

def run(cmd, env):
    """Runs cmd; returns (seconds, peak RSS of that child in MiB, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all waited children so far: run the
    # interesting command first in a fresh process tree to read it reliably.
    return dt, max(after, before) / 1024.0, p.returncode, p.stderr.decode(errors="replace")

def one(binary, n, m, key, keep):
    tmp = tempfile.mkdtemp(prefix="cw-bench.")
    repo, out = os.path.join(tmp, "repo"), os.path.join(tmp, "out")
    os.makedirs(os.path.join(repo, "inventory"))
    with open(os.path.join(repo, "inventory", "bench.yaml"), "w") as f:
        f.write(inventory(n, m, key, out))
    env = dict(os.environ, CERTWRIGHT_KEYSTORE=os.path.join(tmp, "keystore"),
               CERTWRIGHT_PASSPHRASE="bench", GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@l",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@l")
    subprocess.run(["git", "-C", repo, "init", "-q", "-b", "main"], check=True)
    subprocess.run(["git", "-C", repo, "add", "."], check=True)
    subprocess.run(["git", "-C", repo, "commit", "-qm", "inv"], check=True, env=env)
    cw = [binary, "-q", "-C", repo]
    dt_apply, rss_apply, rc, err = run([binary, "-v", "-C", repo, "apply", "--parallel", "2"], env)
    if rc != 0:
        sys.exit(f"apply failed ({rc}): {err[-2000:]}")
    # "debug: issuance 1.234 s, deployment 5.678 s": issuance alone (keys stored, index
    # recorded) versus deployment to the files targets
    m = re.search(r"issuance ([0-9.]+) s, deployment ([0-9.]+) s", err)
    issue_s, deploy_s = (float(m.group(1)), float(m.group(2))) if m else (float("nan"),) * 2
    dt_plan, _, rc, err = run(cw + ["plan"], env)
    if rc != 0:
        sys.exit(f"no-op plan exited {rc}: {err[-2000:]}")
    # peak memory of a no-op plan, measured in its own process tree
    probe = subprocess.run([sys.executable, "-c",
        "import resource,subprocess,sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"] + cw + ["plan"],
        env=env, capture_output=True, text=True)
    rss_plan = int(probe.stdout.strip()) / 1024.0
    if not keep:
        shutil.rmtree(tmp)
    return dt_apply, rss_apply, dt_plan, rss_plan, issue_s, deploy_s

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--certs", type=int, default=10000)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--keys", default="ecdsa-p256,rsa-2048")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "build", "certwright"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    print(f"certwright bench: {a.certs} certificates over {a.targets} files targets, {os.cpu_count()} cores")
    print(f"{'key':<12} {'first apply':>12} {'certs/s':>8} {'issuance':>9} {'issued/s':>9} "
          f"{'deploy':>8} {'no-op plan':>11} {'plan RSS':>9} {'apply RSS':>10}")
    for key in a.keys.split(","):
        dt_apply, rss_apply, dt_plan, rss_plan, issue_s, deploy_s = one(
            a.binary, a.certs, a.targets, key, a.keep)
        print(f"{key:<12} {dt_apply:>11.2f}s {a.certs / dt_apply:>8.0f} {issue_s:>8.2f}s "
              f"{a.certs / issue_s:>9.0f} {deploy_s:>7.2f}s {dt_plan:>10.3f}s "
              f"{rss_plan:>7.1f}MiB {rss_apply:>8.1f}MiB", flush=True)

if __name__ == "__main__":
    main()
