// A published clean room: its definition with every script readable, the
// dataset of each data node (data owners upload here, encrypted in the
// browser), and the computations analysts run.

import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, api, errorText } from "../api";
import { logsAD, resultAD, saveAs, sealedDownload } from "../download";
import { CodeEditor, type Language } from "../components/CodeEditor";
import { ErrorText, formatBytes, formatTime } from "../components/common";
import { checkAttestation, uploadDataset, type Progress } from "../upload";
import { auditExtends, rememberVerified, verifiedBefore, verifyAuditLog } from "../audit";
import { isCompute, isData, isDone, type Attestation, type AuditEntry, type DCRView, type Dataset, type Job, type Node, type ValidationReport } from "../types";

export function Overview({ id, me }: { id: string; me: string }) {
  const [view, setView] = useState<DCRView | null>(null);
  const [att, setAtt] = useState<Attestation | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => api<DCRView>("GET", `/api/v1/dcrs/${encodeURIComponent(id)}`).then(setView), [id]);
  useEffect(() => {
    load().catch((err) => setError(errorText(err)));
    api<Attestation>("GET", "/api/v1/enclave").then(setAtt, () => {});
  }, [load]);

  // Why this page seals no key to the enclave, if it does not.
  let untrusted: string | null = null;
  try {
    if (att) checkAttestation(att);
  } catch (err) {
    untrusted = errorText(err);
  }

  if (error) return <ErrorText error={error} />;
  if (!view) return <p className="loading">Loading…</p>;
  const def = view.definition;
  const p = def.participants.find((x) => x.email.toLowerCase() === me.toLowerCase());
  const isOwner = (n: string) => !!p?.data_owner_of?.includes(n);
  const isAnalyst = (n: string) => !!p?.analyst_of?.includes(n);

  return (
    <section className="overview">
      <h1>{def.name}</h1>
      {def.description && <p>{def.description}</p>}
      <dl className="facts">
        <dt>Clean room id</dt>
        <dd>
          <code data-testid="dcr-id">{view.id}</code>
        </dd>
        <dt>Owner</dt>
        <dd>{def.owner}</dd>
        <dt>Published</dt>
        <dd>{formatTime(view.published_at)}</dd>
        <dt>Enclave</dt>
        <dd data-testid="enclave-mode">
          {att ? (
            att.platform === "software" ? (
              <>
                <strong>software mode</strong>: the enclave runs inside the server process. Your data is encrypted in this browser and only the enclave can open it, but no hardware vouches for the enclave: the server's operator could read it.
              </>
            ) : (
              <>
                <strong>{att.platform}</strong>: <span className="error">{untrusted ?? "unknown to this page"}</span>
              </>
            )
          ) : (
            "…"
          )}
        </dd>
      </dl>

      <h2>Data</h2>
      {def.nodes.filter((n) => isData(n.kind)).map((n) => (
        <DataNode key={n.name} dcrID={view.id} node={n} dataset={view.datasets.find((d) => d.node === n.name)} canUpload={isOwner(n.name)} untrusted={untrusted} reload={load} />
      ))}

      <h2>Computations</h2>
      {def.nodes.filter((n) => isCompute(n.kind)).map((n) => (
        <ComputeNode key={n.name} dcrID={view.id} node={n} canRun={isAnalyst(n.name)} me={me} />
      ))}

      <h2>Participants</h2>
      <table className="participants">
        <thead>
          <tr>
            <th scope="col">Email</th>
            <th scope="col">Data owner of</th>
            <th scope="col">Analyst of</th>
          </tr>
        </thead>
        <tbody>
          {def.participants.map((x) => (
            <tr key={x.email}>
              <td data-label="Email">{x.email}</td>
              <td data-label="Data owner of">{(x.data_owner_of ?? []).join(", ") || "—"}</td>
              <td data-label="Analyst of">{(x.analyst_of ?? []).join(", ") || "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <AuditLog dcrID={view.id} />
    </section>
  );
}

const ACTION: Record<string, string> = {
  "dcr.published": "published the clean room",
  "dataset.published": "published a dataset",
  "dataset.removed": "removed the dataset",
  "job.requested": "ran the computation",
  "job.cancelled": "cancelled a run",
  "result.read": "downloaded a result",
  "logs.read": "read a run's logs",
  "result.deleted": "deleted a run's result and logs",
  "report.read": "read the validation report",
  "job.ended": "a run ended",
};

/** AuditLog shows who did what in the clean room, once this browser has
 * checked the log's hash chain (audit.ts). */
function AuditLog({ dcrID }: { dcrID: string }) {
  const [log, setLog] = useState<AuditEntry[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [held, setHeld] = useState<number | null>(null); // the entry verified here before, which the log still holds
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    setError(null);
    try {
      const got = await api<AuditEntry[]>("GET", `/api/v1/dcrs/${encodeURIComponent(dcrID)}/audit`);
      const before = verifiedBefore(dcrID);
      const problem = (await verifyAuditLog(dcrID, got)) ?? (before && auditExtends(got, before.seq, before.hash));
      if (!problem && got.length > 0) rememberVerified(dcrID, got[got.length - 1]);
      setProblem(problem);
      setHeld(problem ? null : (before?.seq ?? null));
      setLog(got);
    } catch (err) {
      setError(errorText(err));
    }
  }, [dcrID]);
  useEffect(() => void load(), [load]);

  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <ErrorText error={error} />
      {log &&
        (problem ? (
          <p className="error" data-testid="audit-status">
            This log does not verify: {problem}. The server's copy was changed; tell the clean room's owner.
          </p>
        ) : (
          <p className="ok" data-testid="audit-status">
            {log.length} {log.length === 1 ? "entry" : "entries"}, each chained to the one before; checked in this browser{held !== null && `, and it still holds entry ${held} this browser verified before`}.
          </p>
        ))}
      <button type="button" onClick={load}>
        Refresh the audit log
      </button>
      {log && !problem && (
        <table className="participants audit">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">What</th>
              <th scope="col">Node</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {log.map((e) => (
              <tr key={e.seq}>
                <td data-label="When">{formatTime(e.at)}</td>
                <td data-label="Who">{e.actor}</td>
                <td data-label="What">{ACTION[e.action] ?? e.action}</td>
                <td data-label="Node">{e.node || "—"}</td>
                <td data-label="Detail">
                  <code>{e.detail || "—"}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const PHASE: Record<Progress["phase"], string> = { uploading: "Encrypting in this browser and uploading", publishing: "Sealing the key to the enclave and publishing" };

function DataNode({ dcrID, node, dataset, canUpload, untrusted, reload }: { dcrID: string; node: Node; dataset?: Dataset; canUpload: boolean; untrusted: string | null; reload: () => Promise<void> }) {
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [inputKey, setInputKey] = useState(0); // a new key empties the file input
  const inputID = `file-${node.name}`;

  const upload = async () => {
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      await uploadDataset(dcrID, node.name, file, setProgress);
      await reload();
      setFile(null);
      setInputKey((k) => k + 1);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
      setProgress(null);
    }
  };
  const remove = async () => {
    setError(null);
    try {
      await api("DELETE", `/api/v1/dcrs/${encodeURIComponent(dcrID)}/nodes/${encodeURIComponent(node.name)}/dataset`);
      await reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <article className="card data-node" data-node={node.name} aria-label={`Data node ${node.name}`}>
      <header>
        <h3>{node.name}</h3>
        <span className="badge">{node.kind === "raw" ? "raw file" : "table"}</span>
        {node.is_required && <span className="badge">required</span>}
      </header>
      {node.kind === "table" && (
        <p className="hint" data-testid="columns">
          Columns: {(node.columns ?? []).map((c) => `${c.name} (${c.format_type}${c.is_nullable ? ", nullable" : ""}${c.hash_with ? ", hashed: computations see its SHA-256" : ""})`).join(", ")}
          {node.unique_column_combinations?.length ? `. Unique together: ${node.unique_column_combinations.map((combo) => combo.join(" + ")).join("; ")}.` : ""}
        </p>
      )}
      <p data-testid="dataset-status">
        {dataset ? (
          <>
            Dataset published by {dataset.published_by} on {formatTime(dataset.published_at)}: {formatBytes(dataset.size)} encrypted, manifest hash <code className="hash">{dataset.manifest_hash}</code>
          </>
        ) : (
          "No dataset yet."
        )}
      </p>
      {canUpload && (
        <div className="upload">
          <label htmlFor={inputID}>{dataset ? "Replace the dataset with a file" : "Choose a file to upload"}</label>
          <input key={inputKey} id={inputID} type="file" disabled={busy} onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          <button type="button" className="primary" disabled={!file || busy || untrusted !== null} onClick={upload}>
            Encrypt and upload
          </button>
          {dataset && (
            <button type="button" className="danger" disabled={busy} onClick={remove}>
              Remove dataset
            </button>
          )}
          {progress && (
            <div className="progress" aria-live="polite">
              <label>
                {PHASE[progress.phase]}
                <progress max={progress.total} value={progress.done} />
              </label>
              {progress.phase !== "publishing" && <span>{Math.floor((100 * progress.done) / Math.max(1, progress.total))}%</span>}
            </div>
          )}
          <ErrorText error={error ?? untrusted} />
          {canUpload && node.kind === "table" && dataset && <Report dcrID={dcrID} node={node.name} dataset={dataset} />}
        </div>
      )}
    </article>
  );
}

function Report({ dcrID, node, dataset }: { dcrID: string; node: string; dataset: Dataset }) {
  const [report, setReport] = useState<ValidationReport | null>(null);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stop = false;
    const get = async () => {
      if (dataset.validation_job) {
        setPending(true);
        // Wait for the validation job to end, then read its report.
        for (let i = 0; i < 20 && !stop; i++) {
          const j = await api<Job>("GET", `/api/v1/jobs/${dataset.validation_job}?wait=30s`);
          if (isDone(j.state)) break;
        }
      }
      if (stop) return;
      try {
        const job = dataset.validation_job ?? "";
        const report = await sealedDownload(`/api/v1/dcrs/${encodeURIComponent(dcrID)}/nodes/${encodeURIComponent(node)}/dataset/report?job=${encodeURIComponent(job)}`, resultAD(job));
        setReport(JSON.parse(await report.text()) as ValidationReport);
      } finally {
        setPending(false);
      }
    };
    get().catch((err) => !stop && setError(errorText(err)));
    return () => void (stop = true);
  }, [dcrID, node, dataset.manifest_hash, dataset.validation_job]);

  return (
    <section className="report" aria-label={`Validation report of ${node}`}>
      <h4>Validation report</h4>
      {pending && <p>Validating in the enclave…</p>}
      <ErrorText error={error} />
      {report && (
        <>
          <p className={report.valid ? "ok" : "error"}>
            {report.valid ? "Valid" : "Invalid"}: {report.rows} rows, {report.columns} columns, {formatBytes(report.bytes)}
            {report.error_count > 0 && `, ${report.error_count} ${report.error_count === 1 ? "problem" : "problems"}`}.
          </p>
          {report.hint && <p className="hint">{report.hint}</p>}
          {(report.errors ?? []).length > 0 && (
            <ul>
              {report.errors!.map((e, i) => (
                <li key={i}>
                  line {e.line}
                  {e.column && `, column ${e.column}`}
                  {e.value !== undefined && e.value !== "" && ` (“${e.value}”)`}: {e.message}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

function ComputeNode({ dcrID, node, canRun, me }: { dcrID: string; node: Node; canRun: boolean; me: string }) {
  const [jobs, setJobs] = useState<Job[]>([]);
  const [runError, setRunError] = useState<string | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [logs, setLogs] = useState<Record<string, string>>({});
  const [logErrors, setLogErrors] = useState<Record<string, string>>({});
  const [downloadErrors, setDownloadErrors] = useState<Record<string, string>>({});
  const [deleteErrors, setDeleteErrors] = useState<Record<string, string>>({});
  const [deleting, setDeleting] = useState<string | null>(null);
  const [file, setFile] = useState<string | null>(null);
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);
  const base = `/api/v1/dcrs/${encodeURIComponent(dcrID)}/nodes/${encodeURIComponent(node.name)}/jobs`;

  const putJob = (j: Job) => setJobs((js) => [j, ...js.filter((x) => x.id !== j.id)].sort((a, b) => b.created_at.localeCompare(a.created_at)));

  const watch = useCallback(async (j: Job) => {
    while (alive.current && !isDone(j.state)) {
      try {
        j = await api<Job>("GET", `/api/v1/jobs/${j.id}?wait=30s`);
      } catch (err) {
        setRunError(errorText(err));
        return;
      }
      if (alive.current) putJob(j);
    }
  }, []);

  useEffect(() => {
    if (!canRun) return;
    api<Job[]>("GET", base)
      .then((js) => {
        setJobs(js.sort((a, b) => b.created_at.localeCompare(a.created_at)));
        js.filter((j) => !isDone(j.state)).forEach(watch);
      })
      .catch((err) => setListError(errorText(err)));
  }, [base, canRun, watch]);

  const run = async () => {
    setRunError(null);
    try {
      const j = await api<Job>("POST", base);
      putJob(j);
      watch(j);
    } catch (err) {
      setRunError(errorText(err));
    }
  };
  // A job's result, logs and cancel button are its own analyst's only.
  const own = (j: Job) => j.created_by.toLowerCase() === me.toLowerCase();
  const deleteResult = async (j: Job) => {
    if (!window.confirm(`Delete the result and logs of the run of ${formatTime(j.created_at)} for good? No one can get them back.`)) return;
    setDeleteErrors((e) => ({ ...e, [j.id]: "" }));
    setDeleting(j.id);
    try {
      await api("DELETE", `/api/v1/jobs/${j.id}/result`);
      // Shown deleted at once; the server's view of the job follows.
      putJob({ ...j, result_size: 0, has_logs: false, warnings: undefined, result_deleted_at: new Date().toISOString() });
      setLogs(({ [j.id]: _, ...rest }) => rest);
      setLogErrors(({ [j.id]: _, ...rest }) => rest);
      api<Job>("GET", `/api/v1/jobs/${j.id}`).then(putJob, () => {});
    } catch (err) {
      setDeleteErrors((e) => ({ ...e, [j.id]: errorText(err) }));
    } finally {
      setDeleting(null);
    }
  };
  const cancel = async (j: Job) => {
    try {
      await api("POST", `/api/v1/jobs/${j.id}/cancel`);
    } catch (err) {
      setRunError(errorText(err));
    }
  };
  // The zip is decrypted here: the server sends it sealed to this page.
  const download = async (j: Job) => {
    setDownloadErrors((e) => ({ ...e, [j.id]: "" }));
    try {
      saveAs(await sealedDownload(`/api/v1/jobs/${j.id}/result`, resultAD(j.id)), `${node.name}.zip`);
    } catch (err) {
      setDownloadErrors((e) => ({ ...e, [j.id]: errorText(err) }));
    }
  };
  const showLogs = async (j: Job) => {
    try {
      const text = await (await sealedDownload(`/api/v1/jobs/${j.id}/logs`, logsAD(j.id))).text();
      setLogs((l) => ({ ...l, [j.id]: text }));
    } catch (err) {
      setLogErrors((l) => ({ ...l, [j.id]: err instanceof ApiError ? err.message : errorText(err) }));
    }
  };

  const files = node.files ?? [];
  const shown = files.find((f) => f.name === file);
  const latest = jobs[0];

  return (
    <article className="card compute-node" data-node={node.name} aria-label={`Computation ${node.name}`}>
      <header>
        <h3>{node.name}</h3>
        <span className="badge">{node.kind}</span>
        {canRun && (
          <button type="button" className="primary" onClick={run}>
            Run
          </button>
        )}
        {latest && (
          <span className={`badge ${latest.state}`} data-testid="job-state" aria-live="polite">
            {latest.state}
          </span>
        )}
      </header>
      <ErrorText error={runError} />
      <p className="hint">
        Reads: {(node.dependencies ?? []).join(", ") || "nothing"}. Logs: {node.enable_logs_on_error ? "shown on error" : "hidden on error"}, {node.enable_logs_on_success ? "shown on success" : "hidden on success"}.
        {node.kind === "sql" && node.minimum_rows_count !== undefined && ` Minimum rows: ${node.minimum_rows_count}.`}
      </p>
      <div role="tablist" className="tabs file-tabs" aria-label={`${node.name} script and files`}>
        <button role="tab" type="button" aria-selected={file === null} onClick={() => setFile(null)}>
          {node.kind === "sql" ? "Query" : "Main script"}
        </button>
        {files.map((f) => (
          <button role="tab" type="button" key={f.name} aria-selected={file === f.name} onClick={() => setFile(f.name)}>
            {f.name}
          </button>
        ))}
      </div>
      {shown ? <CodeEditor key={shown.name} label={`static file ${shown.name}`} language="text" value={shown.content} readOnly /> : <CodeEditor key="main" label={`${node.name} script`} language={node.kind as Language} value={node.script ?? ""} readOnly />}
      {canRun && (
        <section className="jobs" aria-label={`Runs of ${node.name}`}>
          <h4>Runs</h4>
          <ErrorText error={listError} />
          {jobs.length === 0 && <p>No runs yet.</p>}
          <ul>
            {jobs.map((j) => (
              <li key={j.id} data-job={j.id}>
                <span className={`badge ${j.state}`}>{j.state}</span> {formatTime(j.created_at)} by {j.created_by}
                {j.error && <span className="error"> {j.error}</span>}
                {(j.warnings ?? []).map((w, i) => (
                  <span key={i} className="warning"> {w}</span>
                ))}
                {j.result_deleted_at && (
                  <span className="hint" role="status">
                    {" "}
                    Result and logs deleted {formatTime(j.result_deleted_at)}.
                  </span>
                )}
                {own(j) && j.state === "succeeded" && !j.result_deleted_at && (
                  <button type="button" className="small" onClick={() => download(j)}>
                    Download {node.name}.zip
                  </button>
                )}
                {downloadErrors[j.id] && <span className="error"> {downloadErrors[j.id]}</span>}
                {own(j) && !isDone(j.state) && (
                  <button type="button" className="small" onClick={() => cancel(j)}>
                    Cancel
                  </button>
                )}
                {own(j) && isDone(j.state) && j.has_logs && !logs[j.id] && (
                  <button type="button" className="small" onClick={() => showLogs(j)}>
                    Show logs
                  </button>
                )}
                {own(j) && (j.result_size > 0 || j.has_logs) && (
                  <button type="button" className="small danger" disabled={deleting === j.id} onClick={() => deleteResult(j)} aria-label={`Delete the result of the run of ${formatTime(j.created_at)}`}>
                    Delete result
                  </button>
                )}
                {deleteErrors[j.id] && <span className="error"> {deleteErrors[j.id]}</span>}
                {logErrors[j.id] && <span className="error"> {logErrors[j.id]}</span>}
                {logs[j.id] !== undefined && <pre className="logs">{logs[j.id] || "(no output)"}</pre>}
              </li>
            ))}
          </ul>
        </section>
      )}
    </article>
  );
}
