#!/usr/bin/env python3
"""Offline checks of the cluster recipes in deploy/ (issue 15).

No cluster, container engine or Slurm is needed:
  * deploy/kubernetes: every manifest parses; the kinds and fields the recipe
    relies on are there (one recreated server pod with probes behind a
    Service, an indexed worker Job with its parallelism knob); every Secret,
    ConfigMap, claim and volume referenced exists; every file a flag names
    lies in a mounted volume that holds it; every flag is one `fedsim` knows.
  * deploy/Containerfile: debian:12, and its RUN lines set up and build with
    the scripts CI runs (.ci/run -> scripts/test), nothing else.
  * deploy/slurm/fedsim.sbatch: `bash -n`, its #SBATCH header, and a whole run
    on a fake Slurm (srun and scontrol stand-ins that run every task on this
    machine, on loopback) with the real fedsim, TLS and a token; the run is
    interrupted by the time-limit signal, requeued and resumed, and must end
    with the in-process run's model.
  * deploy/fedsim-serve: fresh start, resume, finished, a run folder without
    checkpoint, with a stand-in fedsim that prints its arguments.

usage: recipes_test.py --fedsim=PATH [unittest arguments]
Needs python3-yaml (scripts/install-deps --test) and openssl.
"""

import glob
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import unittest

try:
    import yaml
except ImportError:
    sys.exit("recipes_test: python3-yaml is missing: run scripts/install-deps --test")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
FEDSIM = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--fedsim=")), "")
if not os.access(FEDSIM, os.X_OK):
    sys.exit(f"usage: recipes_test.py --fedsim=PATH_OF_THE_FEDSIM_BINARY (got '{FEDSIM}')")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write_executable(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(text).lstrip())
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def fedsim_flags(command):
    """The flags `fedsim COMMAND --help` documents, without the dashes."""
    out = subprocess.run([FEDSIM, command, "--help"], capture_output=True, text=True,
                         check=False, timeout=30)
    return set(re.findall(r"^\s+--([a-z_]+) \(", out.stdout + out.stderr, re.M))


def flag_names(args):
    return [a[2:].split("=", 1)[0] for a in args if a.startswith("--")]


def manifests():
    """(file name, document) for every YAML document under deploy/kubernetes."""
    docs = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((os.path.basename(path), doc))
    return docs


def pod_specs(docs):
    """(workload name, pod spec) of every Deployment and Job."""
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for _, d in docs
            if d["kind"] in ("Deployment", "Job")]


class KubernetesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.docs = manifests()
        cls.by_kind = {}
        for _, d in cls.docs:
            cls.by_kind.setdefault(d["kind"], {})[d.get("metadata", {}).get("name")] = d
        cls.kustomization = yaml.safe_load(read(os.path.join(K8S, "kustomization.yaml")))
        # Generated objects: name -> the keys (file names) they hold.
        cls.generated = {}
        for gen in ("secretGenerator", "configMapGenerator"):
            for g in cls.kustomization.get(gen, []):
                cls.generated[(gen, g["name"])] = {os.path.basename(f) for f in g["files"]}

    def test_every_manifest_parses_with_a_kind_and_a_name(self):
        self.assertGreaterEqual(len(self.docs), 6)
        for name, d in self.docs:
            self.assertIn("apiVersion", d, name)
            self.assertIn("kind", d, name)
            if d["kind"] != "Kustomization":
                self.assertTrue(d.get("metadata", {}).get("name"), name)

    def test_kustomization_lists_the_manifests_and_the_files_make_test_certs_writes(self):
        for r in self.kustomization["resources"]:
            self.assertTrue(os.path.isfile(os.path.join(K8S, r)), r)
        made = read(os.path.join(ROOT, "scripts", "make-test-certs"))
        ignored = read(os.path.join(K8S, ".gitignore"))
        for g in self.kustomization["secretGenerator"]:
            for f in g["files"]:
                self.assertTrue(f.startswith("certs/"), f)
                self.assertIn(os.path.basename(f), made, f"make-test-certs does not write {f}")
        self.assertIn("/certs/", ignored)
        for g in self.kustomization["configMapGenerator"]:
            for f in g["files"]:
                self.assertIn("/" + f, ignored)
        self.assertEqual([i["name"] for i in self.kustomization["images"]], ["fedsim"])

    def test_server_is_one_recreated_pod_with_probes_behind_a_service(self):
        dep = self.by_kind["Deployment"]["fedsim-server"]
        self.assertEqual(dep["apiVersion"], "apps/v1")
        self.assertEqual(dep["spec"]["replicas"], 1)
        self.assertEqual(dep["spec"]["strategy"]["type"], "Recreate")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(dep["spec"]["selector"]["matchLabels"].items(), labels.items())
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        self.assertEqual(c["command"][0], "fedsim-serve")
        listen = [a for a in c["args"] if a.startswith("--listen=")]
        self.assertEqual(listen, ["--listen=0.0.0.0:50051"])
        port = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(port, {"grpc": 50051})
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = " ".join(c[probe]["exec"]["command"])
            self.assertIn("fedsim status 127.0.0.1:50051", command, probe)
            self.assertIn("--token_file=", command, probe)
            self.assertIn("--tls_ca=", command, probe)
        svc = self.by_kind["Service"]["fedsim-server"]
        self.assertLessEqual(svc["spec"]["selector"].items(), labels.items())
        (sp,) = svc["spec"]["ports"]
        self.assertEqual((sp["port"], sp["targetPort"]), (50051, "grpc"))

    def test_workers_are_an_indexed_job_with_a_parallelism_knob(self):
        job = self.by_kind["Job"]["fedsim-workers"]
        self.assertEqual(job["apiVersion"], "batch/v1")
        spec = job["spec"]
        self.assertEqual(spec["completionMode"], "Indexed")
        self.assertEqual(spec["parallelism"], spec["completions"])
        self.assertIn(spec["template"]["spec"]["restartPolicy"], ("OnFailure", "Never"))
        (c,) = spec["template"]["spec"]["containers"]
        self.assertEqual(c["command"], ["fedsim", "client"])
        svc = self.by_kind["Service"]["fedsim-server"]
        self.assertIn(f"--server={svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}",
                      c["args"])
        # --name=worker-$(WORKER_INDEX): the variable must be defined.
        env = {e["name"]: e for e in c.get("env", [])}
        for var in re.findall(r"\$\((\w+)\)", " ".join(c["args"])):
            self.assertIn(var, env)
        self.assertIn("job-completion-index",
                      env["WORKER_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"])
        slots = [a for a in c["args"] if a.startswith("--slots=")]
        self.assertEqual(slots, [f"--slots={c['resources']['requests']['cpu']}"])

    def test_every_secret_config_map_and_claim_referenced_exists(self):
        claims = set(self.by_kind.get("PersistentVolumeClaim", {}))
        for workload, pod in pod_specs(self.docs):
            for v in pod.get("volumes", []):
                if "secret" in v:
                    self.assertIn(("secretGenerator", v["secret"]["secretName"]), self.generated,
                                  workload)
                elif "configMap" in v:
                    self.assertIn(("configMapGenerator", v["configMap"]["name"]), self.generated,
                                  workload)
                elif "persistentVolumeClaim" in v:
                    self.assertIn(v["persistentVolumeClaim"]["claimName"], claims, workload)
                else:
                    self.fail(f"{workload}: volume {v['name']} of an unchecked kind")

    def test_every_mount_is_a_volume_and_every_file_a_flag_names_is_in_one(self):
        keys = {}  # volume name -> the files it holds (None: any)
        for workload, pod in pod_specs(self.docs):
            for v in pod.get("volumes", []):
                if "secret" in v:
                    keys[v["name"]] = self.generated[("secretGenerator", v["secret"]["secretName"])]
                elif "configMap" in v:
                    keys[v["name"]] = self.generated[("configMapGenerator", v["configMap"]["name"])]
                else:
                    keys[v["name"]] = None
            for c in pod["containers"]:
                mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
                for volume in mounts.values():
                    self.assertIn(volume, keys, f"{workload}: mount of an undefined volume")
                words = list(c.get("args", []))
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    if probe in c:
                        words += shlex.split(" ".join(c[probe]["exec"]["command"]))
                files = [w.split("=", 1)[1] for w in words
                         if re.match(r"--(tls_\w+|token_file|scenario)=/", w)]
                if c["command"][0].startswith("fedsim"):
                    self.assertTrue(files, workload)
                for f in files:
                    folder, name = os.path.split(f)
                    self.assertIn(folder, mounts, f"{workload}: {f} is in no mounted volume")
                    held = keys[mounts[folder]]
                    if held is not None:
                        self.assertIn(name, held, f"{workload}: volume of {folder} lacks {name}")

    def test_every_flag_is_one_fedsim_knows(self):
        server, client, status = (fedsim_flags(c) for c in ("server", "client", "status"))
        self.assertIn("listen", server)  # the help output was read
        dep = self.by_kind["Deployment"]["fedsim-server"]
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        self.assertLessEqual(set(flag_names(c["args"])), server)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            words = shlex.split(" ".join(c[probe]["exec"]["command"]))
            self.assertLessEqual(set(flag_names(words[words.index("status"):])), status)
        job = self.by_kind["Job"]["fedsim-workers"]
        (w,) = job["spec"]["template"]["spec"]["containers"]
        self.assertLessEqual(set(flag_names(w["args"])), client)


class ContainerfileTest(unittest.TestCase):

    def setUp(self):
        self.text = read(os.path.join(DEPLOY, "Containerfile"))
        # Instructions with their continuation lines joined, comments dropped.
        joined = re.sub(r"\\\n", " ", re.sub(r"(?m)^\s*#.*\n", "", self.text))
        self.instructions = [l.strip() for l in joined.splitlines() if l.strip()]

    def test_built_on_debian_12(self):
        froms = [i.split()[1] for i in self.instructions if i.startswith("FROM ")]
        self.assertEqual(froms, ["debian:12"])

    def test_runs_the_scripts_ci_runs_and_installs_nothing_else(self):
        self.assertIn("exec scripts/test", read(os.path.join(ROOT, ".ci", "run")))
        ci = set(re.findall(r"^(scripts/[\w-]+)", read(os.path.join(ROOT, "scripts", "test")),
                            re.M))
        self.assertEqual(ci, {"scripts/install-deps", "scripts/build"})
        runs = [i[4:] for i in self.instructions if i.startswith("RUN ")]
        used = set()
        for run in runs:
            for command in re.split(r"&&|;", run):
                words = command.split()
                self.assertNotIn("apt-get", words, "packages come from scripts/install-deps")
                if words and words[0].startswith("scripts/"):
                    used.add(words[0])
        self.assertEqual(used, ci)
        # The launcher the recipes call is in the image.
        self.assertRegex(self.text, r"install .*deploy/fedsim-serve /usr/local/bin/")

    def test_the_build_context_leaves_out_build_folders(self):
        ignored = read(os.path.join(ROOT, ".dockerignore")).split()
        self.assertIn("build/", ignored)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FedsimServeTest(unittest.TestCase):
    """deploy/fedsim-serve with a stand-in fedsim that prints its arguments."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = os.path.join(self.tmp.name, "runs")
        self.fake = os.path.join(self.tmp.name, "fedsim")
        write_executable(self.fake, """
            #!/bin/sh
            echo "fedsim $*"
        """)

    def tearDown(self):
        self.tmp.cleanup()

    def serve(self, *args):
        env = dict(os.environ, FEDSIM=self.fake)
        return subprocess.run([os.path.join(DEPLOY, "fedsim-serve"), self.root, *args],
                              capture_output=True, text=True, env=env, timeout=30, check=False)

    def test_a_fresh_root_starts_the_run_there(self):
        self.assertFalse(self.finished())
        r = self.serve("--scenario=s.textproto", "--set=seed=2", "--listen=0.0.0.0:1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["fedsim", "server", "--scenario=s.textproto",
                                            "--set=seed=2", "--listen=0.0.0.0:1",
                                            f"--server_out={self.root}"])

    def test_a_checkpoint_is_resumed_without_scenario_or_set(self):
        os.makedirs(os.path.join(self.root, "quickstart"))
        open(os.path.join(self.root, "quickstart", "checkpoint.bin"), "w").close()
        r = self.serve("--scenario=s.textproto", "--set", "seed=2", "--set=a=b",
                       "--server_out=x", "--listen=0.0.0.0:1", "--token_file=t")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["fedsim", "server",
                                            f"--resume={self.root}/quickstart",
                                            "--listen=0.0.0.0:1", "--token_file=t"])

    def make_run(self, stop_reason):
        run = os.path.join(self.root, "quickstart")
        os.makedirs(run)
        open(os.path.join(run, "checkpoint.bin"), "w").close()
        with open(os.path.join(run, "manifest.json"), "w", encoding="utf-8") as f:
            f.write(f'{{\n  "final_version": 20,\n  "stop_reason": "{stop_reason}",\n}}\n')

    def finished(self):
        return subprocess.run([os.path.join(DEPLOY, "fedsim-serve"), "--finished", self.root],
                              check=False).returncode == 0

    def test_a_finished_run_is_not_started_again(self):
        self.make_run("max_commits")
        self.assertTrue(self.finished())
        r = self.serve("--scenario=s.textproto")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, "")
        self.assertIn("finished", r.stderr)

    def test_an_interrupted_run_is_resumed_though_it_has_a_manifest(self):
        self.make_run("interrupted")
        self.assertFalse(self.finished())
        r = self.serve("--scenario=s.textproto", "--listen=0.0.0.0:1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["fedsim", "server",
                                            f"--resume={self.root}/quickstart",
                                            "--listen=0.0.0.0:1"])

    def test_a_run_without_checkpoint_is_moved_aside(self):
        os.makedirs(os.path.join(self.root, "quickstart"))
        r = self.serve("--scenario=s.textproto")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--scenario=s.textproto", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.root, "quickstart")))
        self.assertEqual(len(glob.glob(os.path.join(self.root, ".failed-*-quickstart"))), 1)

    def test_two_runs_in_one_root_are_refused(self):
        for name in ("a", "b"):
            os.makedirs(os.path.join(self.root, name))
        r = self.serve("--scenario=s.textproto")
        self.assertEqual(r.returncode, 1)
        self.assertIn("must hold one", r.stderr)


class SlurmTest(unittest.TestCase):

    SBATCH = os.path.join(DEPLOY, "slurm", "fedsim.sbatch")
    # The quickstart, small: 8 clients, 4 per round, 10 rounds.
    SETS = ["--set=num_clients=8", "--set=algorithm.fedavg.clients_per_round=4",
            "--set=dataset.fashion_mnist.train_limit=8000", "--set=stop.max_commits=10"]

    def test_scripts_parse(self):
        for script in (self.SBATCH, os.path.join(DEPLOY, "fedsim-serve")):
            r = subprocess.run(["bash", "-n", script], capture_output=True, text=True,
                               check=False)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_header_asks_for_requeue_and_the_time_limit_signal(self):
        header = re.findall(r"^#SBATCH (\S+)", read(self.SBATCH), re.M)
        for option in ("--requeue", "--signal=B:USR1@300", "--open-mode=append"):
            self.assertIn(option, header)
        body = read(self.SBATCH)
        self.assertIn("trap requeue USR1", body)
        self.assertIn('scontrol requeue "$SLURM_JOB_ID"', body)

    def test_a_run_on_a_fake_cluster_is_requeued_resumed_and_matches_the_in_process_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            bin_dir = os.path.join(tmp, "bin")
            os.makedirs(bin_dir)
            # Three "nodes", all this machine: the server's and two workers'.
            write_executable(os.path.join(bin_dir, "scontrol"), f"""
                #!/bin/sh
                case "$1 $2" in
                  "show hostnames") printf 'localhost\\nlocalhost\\nlocalhost\\n' ;;
                  requeue*) echo "$2" >>{tmp}/requeued ;;
                  *) echo "scontrol stand-in: $*" >&2; exit 1 ;;
                esac
            """)
            # srun: --ntasks copies of the command here; SIGTERM goes on to them.
            write_executable(os.path.join(bin_dir, "srun"), """
                #!/usr/bin/env bash
                n=1
                while [[ "$1" == --* ]]; do
                  case "$1" in --ntasks=*) n=${1#--ntasks=} ;; esac
                  shift
                done
                pids=()
                for ((i = 0; i < n; i++)); do "$@" & pids+=($!); done
                trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM
                status=0
                for p in "${pids[@]}"; do
                  while true; do
                    wait "$p"; s=$?
                    kill -0 "$p" 2>/dev/null || break  # else a trap broke the wait
                  done
                  [[ $s -eq 0 ]] || status=$s
                done
                exit $status
            """)
            run_root = os.path.join(tmp, "runs")
            env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"],
                       FEDSIM=FEDSIM, FEDSIM_HOME=ROOT, FEDSIM_RUN_ROOT=run_root,
                       FEDSIM_PORT=str(free_port()), SLURM_JOB_ID="4242",
                       SLURM_JOB_NODELIST="node[1-3]", SLURM_CPUS_PER_TASK="1",
                       SLURM_SUBMIT_DIR=ROOT)
            args = ["bash", self.SBATCH, "--scenario=scenarios/quickstart.textproto",
                    *self.SETS]

            # First start: the time-limit signal after commit 2.
            p = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
            log = []
            for line in p.stderr:
                log.append(line)
                m = re.match(r"commit ([0-9]+)/", line)
                if m and int(m.group(1)) >= 2 and p.poll() is None:
                    p.send_signal(signal.SIGUSR1)
                    break
            log += p.stderr.readlines()
            self.assertEqual(p.wait(timeout=120), 0, "".join(log))
            self.assertEqual(read(os.path.join(tmp, "requeued")).split(), ["4242"])
            run = os.path.join(run_root, "run", "quickstart")
            self.assertTrue(os.path.exists(os.path.join(run, "checkpoint.bin")), "".join(log))
            self.assertIn('"stop_reason": "interrupted"', read(os.path.join(run, "manifest.json")))

            # The requeued job: same id, same run folder, resumed to the end.
            env["SLURM_RESTART_COUNT"] = "1"
            r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=300, check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("resuming the run in", r.stderr)

            ref = os.path.join(tmp, "ref")
            r2 = subprocess.run([FEDSIM, "run", "scenarios/quickstart.textproto", "--inprocess",
                                 f"--run_dir={ref}", *self.SETS], cwd=ROOT,
                                capture_output=True, text=True, timeout=300, check=False)
            self.assertEqual(r2.returncode, 0, r2.stderr)
            with open(os.path.join(run, "final_model.bin"), "rb") as a, \
                    open(os.path.join(ref, "final_model.bin"), "rb") as b:
                self.assertTrue(a.read() == b.read(), "the resumed run's model differs")
            self.assertEqual(read(os.path.join(run, "metrics.csv")),
                             read(os.path.join(ref, "metrics.csv")))

            # Started again once finished: nothing to do.
            env["SLURM_RESTART_COUNT"] = "2"
            r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=120, check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("finished", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[a for a in sys.argv if not a.startswith("--fedsim=")], verbosity=2)
