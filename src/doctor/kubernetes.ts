/**
 * `keepwire doctor --k8s-manifest FILE`: Kubernetes objects (multi-document
 * YAML or a `kind: List`) read into the timeout chain of each workload:
 * Ingress → Service → Pods, from their settings.
 *
 * - Ingress: the AWS Load Balancer Controller's ALB
 *   (`alb.ingress.kubernetes.io/load-balancer-attributes:
 *   idle_timeout.timeout_seconds=N`, 60 s by default) and ingress-nginx
 *   (`nginx.ingress.kubernetes.io/proxy-read-timeout`, seconds, 60 by
 *   default: an L7 proxy that pools its upstream connections).
 * - Service type LoadBalancer: the AWS controller's NLB
 *   (`service.beta.kubernetes.io/aws-load-balancer-type: nlb|external`, 350 s),
 *   the classic ELB (`...aws-load-balancer-connection-idle-timeout`, 60 s by
 *   default), Azure (`service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout`,
 *   minutes, 4 by default).
 * - Pods, and the pod templates of Deployments, StatefulSets, DaemonSets,
 *   ReplicaSets, Jobs: `securityContext.sysctls` `net.ipv4.tcp_keepalive_*`.
 *   These are per network namespace, and a pod's namespace starts at the
 *   kernel's defaults (7200/75/9: tcp_sk_init), not the node's values, so a
 *   pod that sets none probes after 2 h whatever the node says. They are safe
 *   sysctls since Kubernetes 1.29 (KEP-3953), allowed without kubelet flags.
 */
import { readFileSync } from 'node:fs';
import { type Box, keepaliveTiming, STOCK_KERNEL } from '../config/hazards.js';
import { recommend } from '../keepalive/recommend.js';
import { invalid } from './envoy.js';
import { FileAuditor, human, unreadable } from './findings.js';
import type { AuditOptions, ConfigAudit } from './nginx.js';
import { hazardBox, isL4, type Middlebox, PROFILES, tightest } from './profiles.js';
import {
  asArray,
  asObject,
  field,
  type Json,
  type Place,
  readYaml,
  YamlError,
  type YamlFile,
} from './yaml-source.js';

type Obj = { [key: string]: Json };

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'Pod']);

/** A middlebox a manifest puts in front of a Service, with the annotation that says so. */
interface FrontBox {
  box: Middlebox;
  at: Place;
  by: string;
}

interface Workload {
  kind: string;
  name: string;
  obj: Obj;
  labels: Obj;
  podSpec: Obj;
}

class Auditor extends FileAuditor {
  constructor(
    private readonly y: YamlFile,
    private readonly opts: AuditOptions,
  ) {
    super('kubernetes');
  }

  /** A whole number of seconds from an annotation; a bad one is an error at its line. */
  private seconds(annotations: Obj, key: string, what: string): number | undefined {
    const raw = annotations[key];
    if (raw === undefined) return undefined;
    const text = String(raw);
    const n = /^[0-9]+$/.test(text.trim()) ? Number(text) : Number.NaN;
    if (!Number.isFinite(n) || n <= 0) {
      throw new YamlError(`${key}: "${text}" is not a whole number of ${what}`, this.y.at(annotations, key));
    }
    return n;
  }

  run(): void {
    const objects = this.y.docs
      .flatMap((d) => {
        const o = asObject(d);
        if (o?.kind === 'List') return asArray(o.items).map(asObject);
        return [o];
      })
      .filter((o): o is Obj => o !== undefined && typeof o.kind === 'string');
    if (objects.length === 0)
      throw new YamlError('no Kubernetes object (kind:) in this file', {
        file: this.y.file,
        line: 1,
        col: 1,
      });
    const services = objects.filter((o) => o.kind === 'Service');
    const ingresses = objects.filter((o) => o.kind === 'Ingress');
    const workloads = objects
      .flatMap((o) => (WORKLOADS.has(String(o.kind)) ? [this.workload(o)] : []))
      .filter((w): w is Workload => w !== undefined);

    // What each Service has in front: its own load balancer, and the Ingresses routing to it.
    const front = new Map<Obj, FrontBox[]>();
    for (const s of services) front.set(s, this.serviceBoxes(s));
    for (const ing of ingresses) {
      const boxes = this.ingressBoxes(ing);
      for (const name of this.ingressBackends(ing)) {
        const s = services.find((x) => field(x.metadata, 'name') === name);
        if (s) front.get(s)!.push(...boxes);
      }
    }
    for (const w of workloads) {
      const behind = services.filter((s) => selects(asObject(field(s.spec, 'selector')), w.labels));
      const boxes = behind.flatMap((s) => front.get(s) ?? []);
      this.pod(w, boxes, behind);
    }
  }

  private workload(o: Obj): Workload | undefined {
    const name = String(field(o.metadata, 'name') ?? '');
    const kind = String(o.kind);
    if (kind === 'Pod') {
      const spec = asObject(o.spec);
      return spec
        ? { kind, name, obj: o, labels: asObject(field(o.metadata, 'labels')) ?? {}, podSpec: spec }
        : undefined;
    }
    const jobTemplate = asObject(field(field(o.spec, 'jobTemplate'), 'spec'));
    const template = asObject(field(o.spec, 'template')) ?? asObject(field(jobTemplate, 'template'));
    const spec = asObject(template?.spec);
    if (!template || !spec) return undefined;
    return { kind, name, obj: o, labels: asObject(field(template.metadata, 'labels')) ?? {}, podSpec: spec };
  }

  private serviceBoxes(s: Obj): FrontBox[] {
    const annotations = asObject(field(s.metadata, 'annotations')) ?? {};
    const name = String(field(s.metadata, 'name') ?? '');
    if (field(s.spec, 'type') !== 'LoadBalancer') return [];
    const out: FrontBox[] = [];
    const aws = 'service.beta.kubernetes.io/aws-load-balancer-';
    const type = String(annotations[`${aws}type`] ?? '');
    const at = (key: string) =>
      annotations[key] !== undefined ? this.y.at(annotations, key) : this.y.at(s, 'spec');
    if (type === 'nlb' || type === 'external') {
      out.push({ box: PROFILES['aws-nlb']!, at: at(`${aws}type`), by: `Service ${name} (AWS NLB)` });
    } else if (
      annotations[`${aws}connection-idle-timeout`] !== undefined ||
      Object.keys(annotations).some((k) => k.startsWith(aws))
    ) {
      const idle = this.seconds(annotations, `${aws}connection-idle-timeout`, 'seconds') ?? 60;
      out.push({
        box: {
          name: 'aws-elb',
          idleSeconds: idle,
          expiry: 'close',
          pools: true,
          note: 'AWS Classic Load Balancer connection idle timeout',
        },
        at: at(`${aws}connection-idle-timeout`),
        by: `Service ${name} (AWS Classic ELB)`,
      });
    }
    const azure = 'service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout';
    const minutes = this.seconds(annotations, azure, 'minutes');
    if (minutes !== undefined)
      out.push({
        box: { ...PROFILES['azure-lb']!, idleSeconds: minutes * 60 },
        at: at(azure),
        by: `Service ${name} (Azure LB)`,
      });
    return out;
  }

  private ingressBoxes(ing: Obj): FrontBox[] {
    const annotations = asObject(field(ing.metadata, 'annotations')) ?? {};
    const name = String(field(ing.metadata, 'name') ?? '');
    const cls = String(
      field(ing.spec, 'ingressClassName') ?? annotations['kubernetes.io/ingress.class'] ?? '',
    );
    const out: FrontBox[] = [];
    const attrsKey = 'alb.ingress.kubernetes.io/load-balancer-attributes';
    if (cls === 'alb' || Object.keys(annotations).some((k) => k.startsWith('alb.ingress.kubernetes.io/'))) {
      let idle = 60;
      const attrs = annotations[attrsKey];
      if (attrs !== undefined) {
        const m = /(?:^|,)\s*idle_timeout\.timeout_seconds=([^,]*)/.exec(String(attrs));
        if (m) {
          const n = /^[0-9]+$/.test(m[1]!.trim()) ? Number(m[1]) : Number.NaN;
          if (!Number.isFinite(n) || n <= 0)
            throw new YamlError(
              `${attrsKey}: idle_timeout.timeout_seconds "${m[1]}" is not a whole number of seconds`,
              this.y.at(annotations, attrsKey),
            );
          idle = n;
        }
      }
      out.push({
        box: { ...PROFILES['aws-alb']!, idleSeconds: idle },
        at: attrs !== undefined ? this.y.at(annotations, attrsKey) : this.y.at(ing, 'metadata'),
        by: `Ingress ${name} (AWS ALB)`,
      });
    }
    const nginx = 'nginx.ingress.kubernetes.io/';
    if (cls === 'nginx' || Object.keys(annotations).some((k) => k.startsWith(nginx))) {
      const read = this.seconds(annotations, `${nginx}proxy-read-timeout`, 'seconds') ?? 60;
      const box: Middlebox = {
        ...PROFILES['nginx-default']!,
        name: 'ingress-nginx',
        idleSeconds: read,
        pools: true,
      };
      const at =
        annotations[`${nginx}proxy-read-timeout`] !== undefined
          ? this.y.at(annotations, `${nginx}proxy-read-timeout`)
          : this.y.at(ing, 'metadata');
      out.push({ box, at, by: `Ingress ${name} (ingress-nginx)` });
      // A slower response than a box in front of ingress-nginx allows never arrives, whatever TCP keepalive does.
      for (const m of this.opts.front) {
        if (isL4(m) || read <= m.idleSeconds) continue;
        this.add(
          'warning',
          'k8s-ingress-read-timeout-above-lb',
          at,
          `Ingress ${name}: ingress-nginx proxy-read-timeout ${human(read)} lets a response take longer than ${m.name}'s idle timeout ${human(m.idleSeconds)} in front of it`,
          `a response slower than ${human(m.idleSeconds)} never reaches the client: ${hazardBox(m).failure}.`,
          `nginx.ingress.kubernetes.io/proxy-read-timeout: "${Math.max(1, m.idleSeconds - 1)}"`,
        );
      }
    }
    return out;
  }

  private ingressBackends(ing: Obj): string[] {
    const names: string[] = [];
    const svc = (b: Json | undefined) => field(field(b, 'service'), 'name') ?? field(b, 'serviceName');
    const d = svc(field(ing.spec, 'defaultBackend') ?? field(ing.spec, 'backend'));
    if (d) names.push(String(d));
    for (const rule of asArray(field(ing.spec, 'rules')))
      for (const p of asArray(field(field(rule, 'http'), 'paths'))) {
        const n = svc(field(p, 'backend'));
        if (n) names.push(String(n));
      }
    return names;
  }

  /** A workload's keepalive sysctls against the L4 boxes in front of it, and its chain. */
  private pod(w: Workload, front: FrontBox[], services: Obj[]): void {
    const sc = asObject(w.podSpec.securityContext);
    const sysctls = asArray(sc?.sysctls)
      .map(asObject)
      .filter((s): s is Obj => s !== undefined);
    const sysctl = (name: string) => sysctls.find((s) => s.name === `net.ipv4.tcp_keepalive_${name}`);
    const num = (name: string) => {
      const s = sysctl(name);
      if (!s) return undefined;
      const v = Number(s.value);
      if (!Number.isInteger(v) || v <= 0)
        throw new YamlError(
          `sysctl net.ipv4.tcp_keepalive_${name}: "${String(s.value)}" is not a positive whole number`,
          this.y.at(s, 'value'),
        );
      return v;
    };
    const kernel = {
      idle: num('time') ?? STOCK_KERNEL.idle,
      interval: num('intvl') ?? STOCK_KERNEL.interval,
      count: num('probes') ?? STOCK_KERNEL.count,
    };
    const hops = [
      ...front.map((f) => `${f.by}: ${f.box.name} idle ${human(f.box.idleSeconds)}`),
      ...services
        .map((s) => `Service ${String(field(s.metadata, 'name') ?? '')}`)
        .filter((s) => !front.some((f) => f.by.startsWith(`${s} (`))),
      `${w.kind} ${w.name}: tcp_keepalive ${kernel.idle}/${kernel.interval}/${kernel.count}${sysctls.length === 0 ? ' (namespace defaults)' : ''}`,
    ];
    const where = sysctl('time') ? this.y.at(sysctl('time')!, 'value') : this.y.at(w.obj, 'metadata');
    if (front.length > 0 || services.length > 0) {
      this.add(
        'info',
        'k8s-chain',
        this.y.at(w.obj, 'kind'),
        `client → ${hops.join(' → ')}`,
        'the timeout chain these manifests set up, as doctor judges it.',
        'none needed',
      );
    }
    const boxes = [...front.map((f) => f.box), ...this.opts.front];
    const lb = tightest(boxes.filter(isL4));
    if (!lb) return;
    const box: Box = hazardBox(lb);
    const t = keepaliveTiming(
      { idle: kernel.idle, interval: kernel.interval, count: kernel.count },
      box.idleMs,
      kernel,
    );
    if (!t.late) return;
    const rec = recommend(lb.idleSeconds);
    const [idle, intvl, cnt] = rec.soKeepalive.split(':').map((s) => Number.parseInt(s, 10));
    this.add(
      'error',
      'k8s-pod-keepalive-too-late',
      where,
      `${w.kind} ${w.name}: TCP keepalive in its pods probes an idle connection every max(${kernel.idle}, ${kernel.interval}) = ${human(t.period)}${sysctls.length === 0 ? " (no securityContext.sysctls: a pod's network namespace starts at the kernel defaults, not the node's values)" : ''}, not below ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
      `a connection of these pods idle for ${human(lb.idleSeconds)} is forgotten by ${lb.name} before the first probe, and ${box.failure}; the application must also turn SO_KEEPALIVE on (these sysctls only set its timing).`,
      [
        'securityContext:  # the pod spec: safe sysctls since Kubernetes 1.29',
        '  sysctls:',
        `  - { name: net.ipv4.tcp_keepalive_time, value: "${idle}" }`,
        `  - { name: net.ipv4.tcp_keepalive_intvl, value: "${intvl}" }`,
        `  - { name: net.ipv4.tcp_keepalive_probes, value: "${cnt}" }`,
      ].join('\n'),
    );
  }
}

/** A Service selects a pod when every selector label matches (an empty selector selects none here). */
function selects(selector: Obj | undefined, labels: Obj): boolean {
  if (!selector) return false;
  const keys = Object.keys(selector);
  return keys.length > 0 && keys.every((k) => labels[k] === selector[k]);
}

export function auditManifests(file: string, opts: AuditOptions): ConfigAudit {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return unreadable(file, error, 'kubernetes');
  }
  const sources = new Map([[file, text]]);
  try {
    const auditor = new Auditor(readYaml(text, file), opts);
    auditor.run();
    return auditor.audit(sources);
  } catch (error) {
    if (!(error instanceof YamlError)) throw error;
    return invalid(
      error,
      'kubernetes',
      sources,
      'kubectl apply refuses this (or the controller ignores the value)',
    );
  }
}
