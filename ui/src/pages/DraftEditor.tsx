// The draft editor: data nodes, computations with the file browser,
// participants and log policy; "Test all computations" and "Encrypt and
// publish". Edits are saved as they are made.

import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, api, errorText } from "../api";
import { ErrorText } from "../components/common";
import { linkHandler, navigate } from "../router";
import type { Definition, Draft, DraftTest } from "../types";
import { ComputationsTab } from "./ComputationsTab";
import { DataTab } from "./DataTab";
import { ParticipantsTab } from "./ParticipantsTab";

type Tab = "data" | "computations" | "participants";

export interface EditorProps {
  def: Definition;
  update: (f: (d: Definition) => Definition) => void;
  readOnly: boolean;
}

export function DraftEditor({ id }: { id: string; me: string }) {
  const [draft, setDraft] = useState<Draft | null>(null);
  const [def, setDef] = useState<Definition | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [saveState, setSaveState] = useState<"saved" | "saving" | "error">("saved");
  const [saveError, setSaveError] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("data");
  const [test, setTest] = useState<DraftTest | null>(null);
  const [testing, setTesting] = useState(false);
  const [testError, setTestError] = useState<string | null>(null);
  const [publishing, setPublishing] = useState(false);
  const [publishError, setPublishError] = useState<string | null>(null);
  const [publishedID, setPublishedID] = useState<string | null>(null);

  const latest = useRef<Definition | null>(null);
  const timer = useRef<number | undefined>(undefined);
  const saving = useRef<Promise<void>>(Promise.resolve());
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);

  const base = `/api/v1/drafts/${encodeURIComponent(id)}`;

  const reload = useCallback(async () => {
    const d = await api<Draft>("GET", base);
    setDraft(d);
    setDef(d.definition);
    latest.current = d.definition;
    return d;
  }, [base]);

  const pollTest = useCallback(async () => {
    setTesting(true);
    try {
      for (;;) {
        const t = await api<DraftTest>("GET", `${base}/tests/latest?wait=30s`);
        if (!alive.current) return;
        setTest(t);
        if (t.state === "done") return;
      }
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) setTestError(errorText(err));
    } finally {
      setTesting(false);
    }
  }, [base]);

  useEffect(() => {
    reload()
      .then(async (d) => {
        if (d.published_id) return;
        try {
          const t = await api<DraftTest>("GET", `${base}/tests/latest`);
          setTest(t);
          if (t.state === "running") pollTest();
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 404)) setTestError(errorText(err));
        }
      })
      .catch((err) => setLoadError(errorText(err)));
  }, [reload, pollTest, base]);

  const save = useCallback(() => {
    window.clearTimeout(timer.current);
    timer.current = undefined;
    const body = latest.current;
    saving.current = saving.current.then(async () => {
      if (!body) return;
      setSaveState("saving");
      try {
        const d = await api<Draft>("PUT", base, body);
        setDraft(d);
        if (latest.current === body) setSaveState("saved");
        setSaveError(null);
      } catch (err) {
        setSaveState("error");
        setSaveError(errorText(err));
      }
    });
    return saving.current;
  }, [base]);

  const update = useCallback(
    (f: (d: Definition) => Definition) => {
      setDef((d) => {
        const next = f(d!);
        latest.current = next;
        return next;
      });
      setSaveState("saving");
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(save, 400);
    },
    [save],
  );

  // Unsaved edits are saved before leaving the page.
  useEffect(() => () => void (timer.current !== undefined && save()), [save]);

  const flush = async () => {
    if (timer.current !== undefined) save();
    await saving.current;
  };

  const runTests = async () => {
    setTestError(null);
    await flush();
    try {
      const t = await api<DraftTest>("POST", `${base}/tests`);
      setTest(t);
      await pollTest();
    } catch (err) {
      setTestError(errorText(err));
    }
  };

  const publish = async () => {
    setPublishError(null);
    setPublishing(true);
    await flush();
    try {
      const res = await api<{ id: string }>("POST", `${base}/publish`);
      setPublishedID(res.id);
      await reload();
    } catch (err) {
      setPublishError(errorText(err));
    } finally {
      setPublishing(false);
    }
  };

  const setTestDatasets = (ds: Draft["test_datasets"]) => setDraft((d) => (d ? { ...d, test_datasets: ds } : d));

  if (loadError) return <ErrorText error={loadError} />;
  if (!draft || !def) return <p className="loading">Loading…</p>;
  const readOnly = !!draft.published_id;
  const props: EditorProps = { def, update, readOnly };

  return (
    <section className="draft">
      <div className="draft-head">
        <label className="name-field">
          <span className="visually-hidden">Clean room name</span>
          <input className="title-input" value={def.name} readOnly={readOnly} onChange={(e) => update((d) => ({ ...d, name: e.target.value }))} aria-label="Clean room name" />
        </label>
        <span className={`badge ${readOnly ? "published" : "draft"}`}>{readOnly ? "Published" : "Draft"}</span>
        {!readOnly && (
          <span className={`save-state ${saveState}`} aria-live="polite">
            {saveState === "saved" ? "All changes saved" : saveState === "saving" ? "Saving…" : "Not saved"}
          </span>
        )}
      </div>
      <ErrorText error={saveError} />
      {readOnly && (
        <div className="published-banner" role="status">
          <p>
            Published. Clean room id: <code data-testid="published-id">{publishedID ?? draft.published_id}</code>
          </p>
          <p>The definition is now read-only.</p>
          <a href={`/dcrs/${draft.published_id}`} onClick={linkHandler(`/dcrs/${draft.published_id}`)}>
            Open the clean room
          </a>
        </div>
      )}
      {!readOnly && (
        <div className="actions">
          <button type="button" onClick={runTests} disabled={testing}>
            {testing ? "Testing…" : "Test all computations"}
          </button>
          <button type="button" className="primary" onClick={publish} disabled={publishing}>
            {publishing ? "Publishing…" : "Encrypt and publish"}
          </button>
          <button
            type="button"
            className="danger"
            onClick={async () => {
              if (!window.confirm("Delete this draft?")) return;
              try {
                await api("DELETE", base);
                navigate("/");
              } catch (err) {
                setPublishError(errorText(err));
              }
            }}
          >
            Delete draft
          </button>
        </div>
      )}
      <ErrorText error={testError} />
      <ErrorText error={publishError} id="publish-error" />
      {test && !readOnly && <TestSummary test={test} />}

      <div role="tablist" className="tabs" aria-label="Draft sections">
        {(["data", "computations", "participants"] as Tab[]).map((t) => (
          <button key={t} role="tab" type="button" aria-selected={tab === t} id={`tab-${t}`} aria-controls={`panel-${t}`} onClick={() => setTab(t)}>
            {t === "data" ? "Data" : t === "computations" ? "Computations" : "Participants"}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === "data" && <DataTab flush={flush} {...props} draftID={id} testDatasets={draft.test_datasets ?? []} onTestDatasets={setTestDatasets} />}
        {tab === "computations" && <ComputationsTab {...props} test={test} />}
        {tab === "participants" && <ParticipantsTab {...props} />}
      </div>
    </section>
  );
}

function TestSummary({ test }: { test: DraftTest }) {
  return (
    <section className="test-summary" aria-live="polite" aria-label="Test results">
      <h2>
        Test results {test.state === "running" ? <span className="badge running">running</span> : <span className="badge done">done</span>}
      </h2>
      {test.error && <p className="error">{test.error}</p>}
      <ul>
        {(test.nodes ?? []).map((n) => (
          <li key={n.node} data-node={n.node} className={`test-${n.status}`}>
            <strong>{n.node}</strong> <span className={`badge ${n.status}`}>{n.status}</span>
            {n.error && <span className="test-error"> {n.error}</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}
