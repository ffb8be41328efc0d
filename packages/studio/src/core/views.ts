import { mimeForExt, type AttemptView, type JobView, type PendingRequestView, type WorkerCapabilities, type WorkerView } from '@studio-worker/protocol';
import type { JobRow, JobStore } from './job-store.ts';
import { iso, isoOrUndefined } from './result.ts';
import type { Session } from './sessions.ts';
import type { WorkerRow } from './worker-store.ts';

/** Where the API serves a job's result; the same path on both hosts. */
export function resultPath(jobId: string): string {
  return `/graphics/api/jobs/${encodeURIComponent(jobId)}/result`;
}

/** `task`: the job's task as an object when the caller has it (a create's answer), instead of parsing the stored text again. */
export function jobView(row: JobRow, attempts?: ReturnType<JobStore['attempts']>, task?: JobView['task']): JobView {
  const view: JobView = {
    id: row.id,
    seq: row.seq,
    status: row.status,
    model: row.model,
    kind: row.kind,
    engine: row.engine,
    gameId: row.game_id,
    assetName: row.asset_name,
    prompt: row.prompt,
    task: task ?? JSON.parse(row.task),
    priority: row.priority,
    attempt: row.attempt,
    failures: row.failures,
    maxAttempts: row.max_attempts,
    workerId: row.worker_id ?? undefined,
    lastWorkerId: row.last_worker_id ?? undefined,
    lastError: row.last_error ?? undefined,
    progress: row.progress ? JSON.parse(row.progress) : undefined,
    createdAt: iso(row.created_at),
    claimedAt: isoOrUndefined(row.claimed_at),
    startedAt: isoOrUndefined(row.started_at),
    completedAt: isoOrUndefined(row.completed_at),
    updatedAt: iso(row.updated_at),
    notBefore: row.status === 'queued' && row.not_before > row.updated_at ? iso(row.not_before) : undefined,
    resultExpiredAt: row.result_type === 'expired' ? iso(row.updated_at) : undefined,
    result:
      row.status !== 'done' || row.result_type === 'expired'
        ? undefined
        : row.result_type === 'file'
          ? {
              type: 'file',
              url: resultPath(row.id),
              ext: row.result_ext ?? 'bin',
              mime: mimeForExt(row.result_ext ?? ''),
              bytes: row.result_bytes ?? 0,
            }
          : { type: 'json', url: resultPath(row.id) },
  };
  if (attempts) {
    view.attempts = attempts.map(
      (a): AttemptView => ({
        attempt: a.attempt,
        workerId: a.worker_id,
        offeredAt: iso(a.offered_at),
        acceptedAt: isoOrUndefined(a.accepted_at),
        endedAt: iso(a.ended_at),
        outcome: a.outcome as AttemptView['outcome'],
        error: a.error ?? undefined,
      }),
    );
  }
  return view;
}

export function workerView(row: WorkerRow, session: Session | undefined, now: number): WorkerView {
  const caps: WorkerCapabilities | undefined = session?.capabilities ?? (row.capabilities ? JSON.parse(row.capabilities) : undefined);
  const cooldown = Math.max(row.cooldown_until ?? 0, session?.cooldownUntil ?? 0);
  return {
    id: row.id,
    label: row.label,
    machineName: caps?.machineName ?? row.machine_name,
    state: session?.welcomed ? 'online' : 'offline',
    paused: caps ? !caps.autoEnabled : false,
    currentJobIds: session ? [...session.held.keys()] : [],
    lastHeartbeatAt: isoOrUndefined(session?.lastHeartbeatAt ?? row.last_heartbeat_at),
    connectedAt: session?.welcomed ? iso(session.connectedAt) : undefined,
    approvedAt: iso(row.approved_at),
    capabilities: caps,
    consecutiveFailures: row.consecutive_failures,
    coolingDownUntil: cooldown > now ? iso(cooldown) : undefined,
    userAgent: row.user_agent || undefined,
  };
}

export interface RegistrationRow {
  id: string;
  install_id: string;
  secret_hash: string;
  capabilities: string;
  label: string | null;
  source_ip: string;
  user_agent: string;
  status: 'pending' | 'approved' | 'rejected' | 'superseded';
  requested_at: number;
  decided_at: number | null;
  rejection_reason: string | null;
  worker_id: string | null;
}

export function pendingView(row: RegistrationRow): PendingRequestView {
  const caps = JSON.parse(row.capabilities) as WorkerCapabilities;
  return {
    requestId: row.id,
    installId: row.install_id,
    machineName: caps.machineName,
    username: caps.username,
    label: row.label ?? undefined,
    vramTotalGb: caps.vramTotalGb,
    vramThresholdGb: caps.vramThresholdGb,
    taskKinds: caps.taskKinds,
    supportedModels: caps.supportedModels,
    agentVersion: caps.agentVersion,
    sourceIp: row.source_ip,
    userAgent: row.user_agent,
    requestedAt: iso(row.requested_at),
  };
}
