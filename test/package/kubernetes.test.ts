/**
 * deploy/kubernetes: every overlay renders offline with `kubectl kustomize`;
 * every object it renders is valid against the official Kubernetes schemas
 * (kubernetes-models: its validators check types and required fields, and the
 * TypeScript compiler's excess-property check on its interfaces catches a
 * misspelt field, which the validators let through); the pod templates of the
 * Deployment and the DaemonSet are one template; the stop sequence's times
 * hold (terminationGracePeriodSeconds > preStop sleep + shutdown_delay +
 * worker_shutdown_timeout, read from the ConfigMap's keepwire.conf); the probe
 * and port names point at locations that exist in that config; and
 * `keepwire check --strict` passes on the config as extracted from the
 * rendered ConfigMap, with the Service name `app` resolving as cluster DNS
 * would make it (an /etc/hosts entry in a private mount namespace).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { type DirectiveNode, parseConfigAst } from '../../src/config/index.js';
import { parseDuration } from '../../src/units/time.js';
import { MAIN, ROOT, tempDir } from '../support.js';

const K8S = path.join(ROOT, 'deploy', 'kubernetes');
const OVERLAYS = readdirSync(path.join(K8S, 'overlays')).sort();

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects are walked as plain JSON
type Obj = Record<string, any>;

function unmet(): string | false {
  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (kubectl.error) return 'kubectl is not installed';
  return false;
}
const reason = unmet();
if (reason && process.env.CI === 'true') throw new Error(`CI=true: ${reason}`);

function render(overlay: string): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', path.join(K8S, 'overlays', overlay)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `kubectl kustomize ${overlay}: ${r.stderr}`);
  const docs = parseAllDocuments(r.stdout);
  const objects: Obj[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    assert.deepEqual(doc.errors, [], `${overlay}: YAML errors`);
    const o = doc.toJSON() as Obj | null;
    if (o) objects.push(o);
  }
  return objects;
}

const one = (objects: Obj[], kind: string, name?: string): Obj => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''}`);
  return found[0]!;
};
const workloadOf = (objects: Obj[]): Obj =>
  objects.find((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet') ?? assert.fail('no workload');

/** The kubernetes-models module and interface of an object: `apps/v1` `Deployment` → apps/v1/Deployment. */
function modelOf(o: Obj): { module: string; type: string } {
  const [group, version] = String(o.apiVersion).includes('/')
    ? String(o.apiVersion).split('/')
    : ['', String(o.apiVersion)];
  return {
    module: `kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`,
    type: `I${o.kind}`,
  };
}

function seconds(text: string): number {
  const parsed = parseDuration(text);
  assert.ok(parsed.ok, `a time: ${text}`);
  return parsed.value / 1000;
}

/** Top-level and nested directives of the config text, as the parser reads them. */
function directives(text: string): DirectiveNode[] {
  const { ast, diagnostics } = parseConfigAst(text, 'keepwire.conf');
  assert.deepEqual(
    diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  return ast.directives;
}
const walk = (nodes: DirectiveNode[], visit: (n: DirectiveNode, parents: DirectiveNode[]) => void) => {
  const go = (list: DirectiveNode[], parents: DirectiveNode[]) => {
    for (const n of list) {
      visit(n, parents);
      if (n.children) go(n.children, [...parents, n]);
    }
  };
  go(nodes, []);
};

/** The location path of every `location PATH { DIRECTIVE; }` of an http server listening on `port`. */
function locationsWith(nodes: DirectiveNode[], port: number, directive: string): string[] {
  const out: string[] = [];
  walk(nodes, (n, parents) => {
    if (n.name !== directive) return;
    const location = parents.at(-1);
    const server = parents.at(-2);
    if (location?.name !== 'location' || server?.name !== 'server') return;
    const listens = (server.children ?? []).filter((c) => c.name === 'listen');
    if (listens.some((l) => new RegExp(`(^|:)${port}$`).test(l.args[0]?.value ?? '')))
      out.push(location.args.at(-1)!.value);
  });
  return out;
}

describe('deploy/kubernetes (kubectl kustomize, offline)', { skip: reason, timeout: 240_000 }, () => {
  const rendered = new Map<string, Obj[]>();
  before(() => {
    for (const overlay of OVERLAYS) rendered.set(overlay, render(overlay));
  });

  it('has the four overlays: Deployment or DaemonSet, with or without sysctls', () => {
    assert.deepEqual(OVERLAYS, ['daemonset', 'daemonset-sysctls', 'deployment', 'deployment-sysctls']);
    for (const [overlay, objects] of rendered) {
      const kinds = objects.map((o) => o.kind).sort();
      const workload = overlay.startsWith('daemonset') ? 'DaemonSet' : 'Deployment';
      assert.deepEqual(
        kinds,
        ['ConfigMap', 'CronJob', workload, 'Job', 'PodDisruptionBudget', 'Service'].sort(),
        overlay,
      );
      for (const o of objects) {
        assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'keepwire', `${overlay} ${o.kind}`);
        assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'keepwire', `${overlay} ${o.kind}`);
      }
    }
  });

  it('every rendered object passes the kubernetes-models validator of its kind', async () => {
    for (const [overlay, objects] of rendered)
      for (const o of objects) {
        const { module, type } = modelOf(o);
        const Model = (await import(module))[o.kind] as new (data: Obj) => { validate(): void };
        assert.equal(typeof Model, 'function', `${module} exports ${o.kind} (${type})`);
        assert.doesNotThrow(() => new Model(o).validate(), `${overlay}: ${o.kind} ${o.metadata.name}`);
      }
  });

  it('the validator rejects a broken object (the check above can fail)', async () => {
    const objects = rendered.get('deployment')!;
    const broken = structuredClone(workloadOf(objects));
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'http';
    const { Deployment } = await import('kubernetes-models/apps/v1/Deployment');
    assert.throws(() => new Deployment(broken).validate(), /containerPort must be integer/);
  });

  it('no object has a field the Kubernetes API does not define (tsc excess-property check on the kubernetes-models interfaces)', () => {
    // Inside node_modules so that `kubernetes-models` resolves from the project.
    const dir = path.join(ROOT, 'node_modules', '.cache', `keepwire-k8s-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      const lines: string[] = [];
      const typeCheck = (objects: Obj[], tag: string) =>
        objects.forEach((o, i) => {
          const { module, type } = modelOf(o);
          lines.push(
            `// ${tag}: ${o.kind} ${o.metadata.name}`,
            `export const o_${tag.replace(/\W/g, '_')}_${i}: import('${module}').${type} = ${JSON.stringify(o)};`,
          );
        });
      for (const [overlay, objects] of rendered) typeCheck(objects, overlay);
      // The same check on a misspelt field must fail, or it proves nothing.
      const misspelt = structuredClone(workloadOf(rendered.get('deployment')!));
      misspelt.spec.template.spec.terminationGracePeriodSecond = 40;
      writeFileSync(
        path.join(dir, 'misspelt.ts'),
        `export const m: import('kubernetes-models/apps/v1/Deployment').IDeployment = ${JSON.stringify(misspelt)};\n`,
      );
      writeFileSync(path.join(dir, 'objects.ts'), `${lines.join('\n')}\n`);
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const args = (file: string) => [
        tsc,
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--module',
        'NodeNext',
        '--moduleResolution',
        'NodeNext',
        '--target',
        'ES2022',
        '--types',
        'node',
        path.join(dir, file),
      ];
      const good = spawnSync(process.execPath, args('objects.ts'), { encoding: 'utf8', timeout: 120_000 });
      assert.equal(good.status, 0, good.stdout + good.stderr);
      const bad = spawnSync(process.execPath, args('misspelt.ts'), { encoding: 'utf8', timeout: 120_000 });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stdout, /terminationGracePeriodSecond/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Deployment and the DaemonSet run one pod template; the sysctls overlays differ only by the sysctls', () => {
    const template = (overlay: string) => structuredClone(workloadOf(rendered.get(overlay)!).spec.template);
    assert.deepEqual(template('daemonset'), template('deployment'));
    for (const base of ['deployment', 'daemonset']) {
      const withSysctls = template(`${base}-sysctls`);
      const sysctls = withSysctls.spec.securityContext.sysctls as { name: string; value: string }[];
      assert.deepEqual(sysctls.map((s) => s.name).sort(), [
        'net.ipv4.tcp_keepalive_intvl',
        'net.ipv4.tcp_keepalive_probes',
        'net.ipv4.tcp_keepalive_time',
      ]);
      delete withSysctls.spec.securityContext.sysctls;
      assert.deepEqual(withSysctls, template(base));
      // The doctor Job judges the kernel the serving pods have.
      const job = one(rendered.get(`${base}-sysctls`)!, 'Job');
      assert.deepEqual(job.spec.template.spec.securityContext.sysctls, sysctls);
      assert.equal(one(rendered.get(base)!, 'Job').spec.template.spec.securityContext.sysctls, undefined);
    }
  });

  for (const overlay of ['deployment', 'daemonset-sysctls']) {
    it(`${overlay}: the stop sequence fits the grace period, probes and ports point at the config's locations, sysctls probe before the LB forgets`, () => {
      const objects = rendered.get(overlay)!;
      const configMap = one(objects, 'ConfigMap');
      const conf = configMap.data['keepwire.conf'] as string;
      const nodes = directives(conf);
      const top = (name: string) => nodes.find((n) => n.name === name)?.args[0]?.value;
      // The readiness probe must see the 503 of shutdown_delay before the listeners close.
      const shutdownDelay = seconds(top('shutdown_delay') ?? assert.fail('shutdown_delay is set'));
      const shutdownTimeout = seconds(
        top('worker_shutdown_timeout') ?? assert.fail('worker_shutdown_timeout'),
      );
      const lbIdle = seconds(top('lb_idle_timeout') ?? assert.fail('lb_idle_timeout is set'));

      const pod = workloadOf(objects).spec.template.spec;
      const [container] = pod.containers;
      assert.deepEqual(container.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      assert.equal(pod.securityContext.runAsNonRoot, true);
      // The ConfigMap mounted where keepwire looks by default, under its generated (hashed) name.
      const confVolume = pod.volumes.find((v: Obj) => v.configMap);
      assert.equal(confVolume.configMap.name, configMap.metadata.name);
      assert.match(configMap.metadata.name, /^keepwire-conf-[a-z0-9]{10}$/);
      assert.ok(
        container.volumeMounts.some(
          (m: Obj) => m.name === confVolume.name && m.mountPath === '/etc/keepwire',
        ),
      );

      // preStop → SIGQUIT → shutdown_delay → drain, all inside the grace period (with a margin).
      const preStop = container.lifecycle.preStop.exec.command as string[];
      assert.equal(preStop[0], 'sleep');
      const preStopSleep = Number(preStop[1]);
      assert.ok(preStopSleep >= 2, 'preStop leaves endpoints time to go');
      const grace = pod.terminationGracePeriodSeconds as number;
      assert.ok(
        grace > preStopSleep + shutdownDelay + shutdownTimeout,
        `terminationGracePeriodSeconds ${grace} > preStop ${preStopSleep} + shutdown_delay ${shutdownDelay} + worker_shutdown_timeout ${shutdownTimeout}`,
      );

      // Readiness and liveness on the health location of the server on the named port.
      const portOf = (name: string) =>
        container.ports.find((p: Obj) => p.name === name)?.containerPort ?? assert.fail(`port ${name}`);
      for (const probe of [container.readinessProbe, container.livenessProbe]) {
        const http = portOf(probe.httpGet.port);
        // The `health` location: 503 once a graceful stop begins.
        const answering = locationsWith(nodes, http, 'health');
        assert.ok(
          answering.includes(probe.httpGet.path),
          `${probe.httpGet.path} is a location of port ${http}`,
        );
      }
      // The readiness probe notices shutdown_delay's 503 well within it.
      const ready = container.readinessProbe;
      assert.ok(ready.periodSeconds * ready.failureThreshold * 2 <= shutdownDelay);
      // The metrics port serves the metrics location; the Service names it for a ServiceMonitor.
      assert.deepEqual(locationsWith(nodes, portOf('metrics'), 'metrics'), ['/metrics']);
      const service = one(objects, 'Service');
      assert.ok(service.spec.ports.some((p: Obj) => p.name === 'metrics' && p.targetPort === 'metrics'));
      assert.deepEqual(service.spec.selector, workloadOf(objects).spec.selector.matchLabels);

      const sysctls = (pod.securityContext.sysctls ?? []) as { name: string; value: string }[];
      if (overlay.endsWith('-sysctls')) {
        const value = (name: string) => Number(sysctls.find((s) => s.name === name)?.value);
        const idle = value('net.ipv4.tcp_keepalive_time');
        const interval = value('net.ipv4.tcp_keepalive_intvl');
        // A healthy idle connection probes every max(idle, interval): both below the LB's idle timeout.
        assert.ok(
          Math.max(idle, interval) < lbIdle,
          `${idle}s/${interval}s below lb_idle_timeout ${lbIdle}s`,
        );
        assert.ok(value('net.ipv4.tcp_keepalive_probes') >= 1);
      } else assert.deepEqual(sysctls, []);
    });
  }

  describe('keepwire check and the doctor Job on the ConfigMap as rendered', () => {
    const dir = tempDir('keepwire-k8s-');
    const root = process.getuid?.() === 0;
    const needs = root ? false : 'needs root (a private mount namespace for /etc/hosts)';
    if (needs && process.env.CI === 'true') throw new Error(`CI=true: ${needs}`);
    after(() => rmSync(dir, { recursive: true, force: true }));
    const hosts = path.join(dir, 'hosts');
    writeFileSync(
      hosts,
      '127.0.0.1 localhost\n::1 localhost\n10.96.0.20 app app.default.svc.cluster.local\n',
    );

    /** Runs keepwire with the cluster's names resolving: `app` (the upstream Service) in /etc/hosts. */
    const inCluster = (args: string[]) => {
      const script = 'mount --bind "$0" /etc/hosts && exec "$@"';
      return spawnSync('unshare', ['--mount', 'sh', '-c', script, hosts, process.execPath, MAIN, ...args], {
        encoding: 'utf8',
        timeout: 60_000,
      });
    };

    it('keepwire check --strict passes on every overlay’s keepwire.conf', { skip: needs }, () => {
      for (const [overlay, objects] of rendered) {
        const file = path.join(dir, `${overlay}.conf`);
        writeFileSync(file, one(objects, 'ConfigMap').data['keepwire.conf']);
        const r = inCluster(['check', '--strict', '-c', file]);
        assert.equal(r.status, 0, `${overlay}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /syntax is ok/);
      }
    });

    it('the doctor Job’s command passes in a network namespace with the sysctls overlay’s kernel values', {
      skip: needs,
    }, () => {
      const objects = rendered.get('deployment-sysctls')!;
      const job = one(objects, 'Job').spec.template.spec;
      const args = job.containers[0].args as string[];
      const file = path.join(dir, 'doctor.conf');
      writeFileSync(file, one(objects, 'ConfigMap').data['keepwire.conf']);
      const ns = `kw-deploy-k8s-${process.pid}`;
      assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
      try {
        for (const s of job.securityContext.sysctls as { name: string; value: string }[]) {
          const set = spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${s.name}=${s.value}`], {
            encoding: 'utf8',
          });
          assert.equal(set.status, 0, set.stderr);
        }
        const cmd = args.map((a) => (a === '/etc/keepwire/keepwire.conf' ? file : a));
        const r = spawnSync(
          'ip',
          [
            'netns',
            'exec',
            ns,
            'unshare',
            '--mount',
            'sh',
            '-c',
            'mount --bind "$0" /etc/hosts && exec "$@"',
            hosts,
            process.execPath,
            MAIN,
            ...cmd,
          ],
          { encoding: 'utf8', timeout: 60_000 },
        );
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const report = JSON.parse(r.stdout) as Obj;
        assert.ok(report, 'a JSON report');
      } finally {
        spawnSync('ip', ['netns', 'del', ns]);
      }
    });
  });
});
