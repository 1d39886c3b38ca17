import { useState } from "react";
import { CodeEditor, type Language } from "../components/CodeEditor";
import { ErrorText } from "../components/common";
import { copyText, inputFiles, staticFileSnippet } from "../snippets";
import { isCompute, type DraftTest, type Node, type NodeKind } from "../types";
import { removeNode, setNode } from "./DataTab";
import type { EditorProps } from "./DraftEditor";

const KIND_LABEL: Record<string, string> = { python: "Python", sql: "SQL", r: "R" };

export function ComputationsTab({ def, update, readOnly, test }: EditorProps & { test: DraftTest | null }) {
  const computations = def.nodes.filter((n) => isCompute(n.kind));
  const [selected, setSelected] = useState<string | null>(computations[0]?.name ?? null);
  const [kind, setKind] = useState<NodeKind>("python");
  const [name, setName] = useState("");
  const [addError, setAddError] = useState<string | null>(null);
  const current = computations.find((n) => n.name === selected) ?? computations[0];

  const add = (ev: React.FormEvent) => {
    ev.preventDefault();
    if (def.nodes.some((n) => n.name === name)) {
      setAddError(`a node named "${name}" already exists`);
      return;
    }
    setAddError(null);
    const node: Node = { name, kind, script: "" };
    update((d) => ({ ...d, nodes: [...d.nodes, node] }));
    setSelected(name);
    setName("");
  };

  return (
    <div className="computations-tab">
      <nav className="comp-list" aria-label="Computations">
        <ul>
          {computations.map((n) => {
            const t = test?.nodes?.find((x) => x.node === n.name);
            return (
              <li key={n.name}>
                <button type="button" aria-current={current?.name === n.name} onClick={() => setSelected(n.name)}>
                  {n.name} <span className="badge">{KIND_LABEL[n.kind]}</span>
                  {t && <span className={`badge ${t.status}`}>{t.status}</span>}
                </button>
              </li>
            );
          })}
        </ul>
        {!readOnly && (
          <form onSubmit={add} aria-label="Add computation" className="add-comp">
            <label>
              Type
              <select value={kind} onChange={(e) => setKind(e.target.value as NodeKind)}>
                <option value="python">Python</option>
                <option value="sql">SQL</option>
                <option value="r">R</option>
              </select>
            </label>
            <label>
              Computation name
              <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}" title="1-64 letters, digits, '_', '.' or '-', not starting with '.' or '-'" />
            </label>
            <button type="submit">Add computation</button>
            <ErrorText error={addError} />
          </form>
        )}
      </nav>
      {current ? <Computation key={current.name} node={current} nodes={def.nodes} update={update} readOnly={readOnly} test={test} /> : <p>No computations yet. Add one: Python, SQL or R.</p>}
    </div>
  );
}

function Computation({ node, nodes, update, readOnly, test }: { node: Node; nodes: Node[]; update: EditorProps["update"]; readOnly: boolean; test: DraftTest | null }) {
  const [file, setFile] = useState<string | null>(null); // null: the main script
  const [adding, setAdding] = useState(false);
  const [newFile, setNewFile] = useState("");
  const [fileError, setFileError] = useState<string | null>(null);
  const set = (f: (n: Node) => Node) => update((d) => setNode(d, node.name, f));
  const result = test?.state === "done" ? test.nodes?.find((x) => x.node === node.name) : undefined;
  const lang = node.kind as Language;
  const files = node.files ?? [];
  const current = files.find((f) => f.name === file);

  const addFile = (ev: React.FormEvent) => {
    ev.preventDefault();
    if (files.some((f) => f.name === newFile)) {
      setFileError(`a static file named "${newFile}" already exists`);
      return;
    }
    setFileError(null);
    set((n) => ({ ...n, files: [...(n.files ?? []), { name: newFile, content: "" }] }));
    setFile(newFile);
    setNewFile("");
    setAdding(false);
  };

  return (
    <div className="computation" data-computation={node.name}>
      <div className="comp-main">
        <header className="comp-head">
          <h2>{node.name}</h2>
          <span className="badge">{KIND_LABEL[node.kind]}</span>
          {!readOnly && (
            <button type="button" className="danger small" onClick={() => update((d) => removeNode(d, node.name))} aria-label={`Remove computation ${node.name}`}>
              Remove
            </button>
          )}
        </header>
        <div role="tablist" className="tabs file-tabs" aria-label="Script and static files">
          <button role="tab" type="button" aria-selected={file === null} onClick={() => setFile(null)}>
            {node.kind === "sql" ? "Query" : "Main script"}
          </button>
          {files.map((f) => (
            <button role="tab" type="button" key={f.name} aria-selected={file === f.name} onClick={() => setFile(f.name)}>
              {f.name}
            </button>
          ))}
          {!readOnly && node.kind !== "sql" && (
            <button type="button" className="plus" aria-label="Add static file" title="Add a static file, available at /input/code/<name>" onClick={() => setAdding((a) => !a)}>
              +
            </button>
          )}
        </div>
        {adding && (
          <form className="inline-form" onSubmit={addFile} aria-label="New static file">
            <label>
              File name
              <input autoFocus value={newFile} onChange={(e) => setNewFile(e.target.value)} required pattern="[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}" />
            </label>
            <button type="submit">Add file</button>
            <ErrorText error={fileError} />
          </form>
        )}
        {file === null || !current ? (
          <CodeEditor key="main" label={`${node.name} main script`} language={lang} value={node.script ?? ""} readOnly={readOnly} errorLine={result?.status === "failed" ? result.line : 0} onChange={(v) => set((n) => ({ ...n, script: v }))} />
        ) : (
          <>
            <p className="hint">
              Available to the script at <code>/input/code/{current.name}</code>.{" "}
              <CopyButton text={staticFileSnippet(current.name, node.kind)} label={`Copy snippet for /input/code/${current.name}`} />
              {!readOnly && (
                <button
                  type="button"
                  className="small danger"
                  onClick={() => {
                    set((n) => ({ ...n, files: (n.files ?? []).filter((f) => f.name !== current.name) }));
                    setFile(null);
                  }}
                >
                  Remove file
                </button>
              )}
            </p>
            <CodeEditor key={"f:" + current.name} label={`static file ${current.name}`} language="text" value={current.content} readOnly={readOnly} onChange={(v) => set((n) => ({ ...n, files: (n.files ?? []).map((f) => (f.name === current.name ? { ...f, content: v } : f)) }))} />
          </>
        )}
        {node.kind === "sql" && (
          <label>
            Minimum rows (a smaller result fails and releases nothing)
            <input
              type="number"
              min={0}
              value={node.minimum_rows_count ?? ""}
              readOnly={readOnly}
              onChange={(e) => set((n) => ({ ...n, minimum_rows_count: e.target.value === "" ? undefined : Number(e.target.value) }))}
            />
          </label>
        )}
        {result && (
          <section className={`test-result ${result.status}`} aria-label={`Test result of ${node.name}`} data-status={result.status}>
            <h3>
              Test: <span className={`badge ${result.status}`}>{result.status}</span>
              {result.status === "failed" && result.line ? <span> at line {result.line}</span> : null}
            </h3>
            {result.error && <p className="error">{result.error}</p>}
            {result.logs && (
              <details open={result.status === "failed"}>
                <summary>Logs</summary>
                <pre className="logs">{result.logs}</pre>
              </details>
            )}
          </section>
        )}
      </div>
      <FileBrowser node={node} nodes={nodes} set={set} readOnly={readOnly} test={test} />
    </div>
  );
}

function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  return (
    <button
      type="button"
      className="copy small"
      aria-label={label}
      title={state === "copied" ? "Copied" : "Copy a snippet that reads it"}
      onClick={async () => {
        try {
          await copyText(text);
          setState("copied");
        } catch {
          setState("failed");
        }
        window.setTimeout(() => setState("idle"), 1500);
      }}
    >
      {state === "copied" ? "✓" : state === "failed" ? "!" : <CopyIcon />}
      <span className="visually-hidden">{state === "copied" ? " copied" : ""}</span>
    </button>
  );
}

function CopyIcon() {
  return (
    <svg aria-hidden="true" width="14" height="14" viewBox="0 0 16 16" fill="none" stroke="currentColor" strokeWidth="1.5">
      <rect x="5" y="5" width="9" height="9" rx="1.5" />
      <path d="M11 5V3.5A1.5 1.5 0 0 0 9.5 2h-6A1.5 1.5 0 0 0 2 3.5v6A1.5 1.5 0 0 0 3.5 11H5" />
    </svg>
  );
}

/** FileBrowser lists the clean room's other nodes; ticking one makes it a
 * dependency and shows the files it gives under /input. */
function FileBrowser({ node, nodes, set, readOnly, test }: { node: Node; nodes: Node[]; set: (f: (n: Node) => Node) => void; readOnly: boolean; test: DraftTest | null }) {
  const deps = node.dependencies ?? [];
  const others = nodes.filter((n) => n.name !== node.name && (node.kind !== "sql" || n.kind === "table" || n.kind === "sql"));
  const toggle = (name: string, on: boolean) => set((n) => ({ ...n, dependencies: on ? [...(n.dependencies ?? []), name] : (n.dependencies ?? []).filter((d) => d !== name) }));

  return (
    <aside className="file-browser" aria-label="File browser">
      <h3>File browser</h3>
      <p className="hint">Tick what this computation reads; it appears under /input.</p>
      {others.length === 0 && <p>No other nodes to read from yet.</p>}
      <ul>
        {others.map((o) => {
          const on = deps.includes(o.name);
          const outputs = test?.nodes?.find((t) => t.node === o.name)?.outputs;
          const files = on ? inputFiles(o, node.kind, outputs) : [];
          return (
            <li key={o.name} data-dependency={o.name}>
              <label className="check">
                <input type="checkbox" checked={on} disabled={readOnly} onChange={(e) => toggle(o.name, e.target.checked)} />
                {o.name} <span className="badge">{o.kind}</span>
              </label>
              {on && (
                <ul className="files">
                  {files.map((f) => (
                    <li key={f.path}>
                      <code>{f.path}</code>
                      {f.snippet && <CopyButton text={f.snippet} label={`Copy snippet for ${f.path}`} />}
                    </li>
                  ))}
                  {(o.kind === "python" || o.kind === "r") && files.length === 0 && <li className="hint">Run “Test all computations” to list the files it writes.</li>}
                </ul>
              )}
            </li>
          );
        })}
      </ul>
      {(node.files ?? []).length > 0 && (
        <>
          <h4>Static files</h4>
          <ul className="files">
            {(node.files ?? []).map((f) => (
              <li key={f.name}>
                <code>/input/code/{f.name}</code>
                <CopyButton text={staticFileSnippet(f.name, node.kind)} label={`Copy snippet for /input/code/${f.name}`} />
              </li>
            ))}
          </ul>
        </>
      )}
    </aside>
  );
}
