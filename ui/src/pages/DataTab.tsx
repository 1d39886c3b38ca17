import { useState } from "react";
import { api, errorText } from "../api";
import { ErrorText, formatBytes } from "../components/common";
import { FORMAT_TYPES, HASH_WITH_SHA256_HEX, isData, type Column, type Definition, type Node, type TestDataset } from "../types";
import type { EditorProps } from "./DraftEditor";

/** MAX_TEST_DATASET is the largest test dataset a draft takes. */
const MAX_TEST_DATASET = 64 << 20;

interface Props extends EditorProps {
  draftID: string;
  /** flush saves pending edits: a test dataset goes to a node the server knows. */
  flush: () => Promise<void>;
  testDatasets: TestDataset[];
  onTestDatasets: (ds: TestDataset[]) => void;
}

export function setNode(d: Definition, name: string, f: (n: Node) => Node): Definition {
  return { ...d, nodes: d.nodes.map((n) => (n.name === name ? f(n) : n)) };
}

/** removeNode drops a node and every reference to it. */
export function removeNode(d: Definition, name: string): Definition {
  return {
    ...d,
    nodes: d.nodes.filter((n) => n.name !== name).map((n) => (n.dependencies?.includes(name) ? { ...n, dependencies: n.dependencies.filter((x) => x !== name) } : n)),
    participants: d.participants.map((p) => ({ ...p, data_owner_of: p.data_owner_of?.filter((x) => x !== name), analyst_of: p.analyst_of?.filter((x) => x !== name) })),
  };
}

export function DataTab({ def, update, readOnly, draftID, testDatasets, onTestDatasets, flush }: Props) {
  const [name, setName] = useState("");
  const [kind, setKind] = useState<"raw" | "table">("raw");
  const [required, setRequired] = useState(true);
  const [addError, setAddError] = useState<string | null>(null);
  const nodes = def.nodes.filter((n) => isData(n.kind));

  const add = (ev: React.FormEvent) => {
    ev.preventDefault();
    if (def.nodes.some((n) => n.name === name)) {
      setAddError(`a node named "${name}" already exists`);
      return;
    }
    setAddError(null);
    const node: Node = { name, kind, is_required: required || undefined };
    if (kind === "table") node.columns = [{ name: "", format_type: "STRING", is_nullable: false }];
    update((d) => ({ ...d, nodes: [...d.nodes, node] }));
    setName("");
  };

  return (
    <div className="data-tab">
      {nodes.length === 0 && <p>No data nodes yet.</p>}
      {nodes.map((n) => (
        <DataNodeCard key={n.name} node={n} update={update} readOnly={readOnly} draftID={draftID} flush={flush} testDataset={testDatasets.find((t) => t.node === n.name)} testDatasets={testDatasets} onTestDatasets={onTestDatasets} />
      ))}
      {!readOnly && (
        <form className="add-node card" onSubmit={add} aria-label="Add data node">
          <h3>Add a data node</h3>
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}" title="1-64 letters, digits, '_', '.' or '-', not starting with '.' or '-'" />
          </label>
          <label>
            Type
            <select value={kind} onChange={(e) => setKind(e.target.value as "raw" | "table")}>
              <option value="raw">Raw file</option>
              <option value="table">Table (CSV with columns)</option>
            </select>
          </label>
          <label className="check">
            <input type="checkbox" checked={required} onChange={(e) => setRequired(e.target.checked)} />
            Required
          </label>
          <button type="submit">Add data node</button>
          <ErrorText error={addError} />
        </form>
      )}
    </div>
  );
}

function DataNodeCard({ node, update, readOnly, draftID, flush, testDataset, testDatasets, onTestDatasets }: { node: Node; update: Props["update"]; readOnly: boolean; draftID: string; flush: Props["flush"]; testDataset?: TestDataset; testDatasets: TestDataset[]; onTestDatasets: Props["onTestDatasets"] }) {
  const [testError, setTestError] = useState<string | null>(null);
  const set = (f: (n: Node) => Node) => update((d) => setNode(d, node.name, f));
  const setCol = (i: number, f: (c: Column) => Column) => set((n) => ({ ...n, columns: n.columns!.map((c, j) => (j === i ? f(c) : c)) }));
  // A unique combination names columns. It follows a rename, and loses a
  // removed column, only where the name was that one column's: a name two
  // columns share, or none, says nothing of which column is meant.
  const onlyColumn = (n: Node, name: string) => name !== "" && n.columns!.filter((c) => c.name === name).length === 1;
  const renameCol = (i: number, name: string) =>
    set((n) => {
      const old = n.columns![i].name;
      const follow = onlyColumn(n, old);
      const combos = n.unique_column_combinations?.map((combo) => combo.map((c) => (follow && c === old ? name : c)));
      return { ...n, columns: n.columns!.map((c, j) => (j === i ? { ...c, name } : c)), unique_column_combinations: combos };
    });
  const removeCol = (i: number) =>
    set((n) => {
      const old = n.columns![i].name;
      const follow = onlyColumn(n, old);
      const combos = n.unique_column_combinations?.map((combo) => combo.filter((c) => !(follow && c === old)));
      return { ...n, columns: n.columns!.filter((_, j) => j !== i), unique_column_combinations: combos };
    });
  // Ticking a column keeps a combination in column order, so the same
  // columns make the same definition (and id) whatever the order of clicks.
  const tick = (k: number, name: string, on: boolean) =>
    set((n) => {
      const combos = (n.unique_column_combinations ?? []).map((combo, j) => {
        if (j !== k) return combo;
        const chosen = new Set(on ? [...combo, name] : combo.filter((c) => c !== name));
        const known = n.columns!.map((c) => c.name).filter((c, at, all) => chosen.has(c) && all.indexOf(c) === at);
        return [...known, ...combo.filter((c) => chosen.has(c) && !known.includes(c))];
      });
      return { ...n, unique_column_combinations: combos };
    });
  const removeCombo = (k: number) =>
    set((n) => {
      const combos = (n.unique_column_combinations ?? []).filter((_, j) => j !== k);
      return { ...n, unique_column_combinations: combos.length ? combos : undefined };
    });
  const named = (node.columns ?? []).filter((c, at, all) => c.name !== "" && all.findIndex((x) => x.name === c.name) === at);
  const path = `/api/v1/drafts/${encodeURIComponent(draftID)}/nodes/${encodeURIComponent(node.name)}/test-dataset`;

  const putTest = async (file: File) => {
    setTestError(null);
    if (file.size > MAX_TEST_DATASET) {
      setTestError(`the test dataset is ${formatBytes(file.size)}; the limit is 64 MiB`);
      return;
    }
    try {
      await flush();
      await api("PUT", path, undefined, { raw: file });
      onTestDatasets([...testDatasets.filter((t) => t.node !== node.name), { node: node.name, size: file.size }]);
    } catch (err) {
      setTestError(errorText(err));
    }
  };
  const deleteTest = async () => {
    setTestError(null);
    try {
      await api("DELETE", path);
      onTestDatasets(testDatasets.filter((t) => t.node !== node.name));
    } catch (err) {
      setTestError(errorText(err));
    }
  };

  return (
    <article className="card data-node" data-node={node.name} aria-label={`Data node ${node.name}`}>
      <header>
        <h3>{node.name}</h3>
        <span className="badge">{node.kind === "raw" ? "raw file" : "table"}</span>
        <label className="check">
          <input type="checkbox" checked={!!node.is_required} disabled={readOnly} onChange={(e) => set((n) => ({ ...n, is_required: e.target.checked || undefined }))} />
          Required
        </label>
        {!readOnly && (
          <button type="button" className="danger small" onClick={() => update((d) => removeNode(d, node.name))} aria-label={`Remove data node ${node.name}`}>
            Remove
          </button>
        )}
      </header>
      <p className="hint">
        Computations read it at <code>{node.kind === "raw" ? `/input/${node.name}` : `/input/${node.name}/dataset.csv`}</code>.
      </p>
      {node.kind === "table" && (
        <table className="columns">
          <caption>Columns</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Nullable</th>
              <th scope="col">Hashed</th>
              {!readOnly && <th scope="col"><span className="visually-hidden">Remove</span></th>}
            </tr>
          </thead>
          <tbody>
            {(node.columns ?? []).map((c, i) => (
              <tr key={i}>
                <td>
                  <input aria-label={`Column ${i + 1} name`} value={c.name} readOnly={readOnly} onChange={(e) => renameCol(i, e.target.value)} />
                </td>
                <td>
                  <select aria-label={`Column ${i + 1} type`} value={c.format_type} disabled={readOnly} onChange={(e) => setCol(i, (c) => ({ ...c, format_type: e.target.value }))}>
                    {FORMAT_TYPES.map((t) => (
                      <option key={t}>{t}</option>
                    ))}
                  </select>
                </td>
                <td>
                  <input type="checkbox" aria-label={`Column ${i + 1} nullable`} checked={c.is_nullable} disabled={readOnly} onChange={(e) => setCol(i, (c) => ({ ...c, is_nullable: e.target.checked }))} />
                </td>
                <td>
                  <input type="checkbox" aria-label={`Column ${i + 1} hashed`} checked={c.hash_with === HASH_WITH_SHA256_HEX} disabled={readOnly} onChange={(e) => setCol(i, (c) => ({ ...c, hash_with: e.target.checked ? HASH_WITH_SHA256_HEX : undefined }))} />
                </td>
                {!readOnly && (
                  <td>
                    <button type="button" className="small" aria-label={`Remove column ${i + 1}`} onClick={() => removeCol(i)}>
                      ✕
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
          {!readOnly && (
            <tfoot>
              <tr>
                <td colSpan={5}>
                  <button type="button" className="small" onClick={() => set((n) => ({ ...n, columns: [...(n.columns ?? []), { name: "", format_type: "STRING", is_nullable: false }] }))}>
                    Add column
                  </button>
                </td>
              </tr>
            </tfoot>
          )}
        </table>
      )}
      {node.kind === "table" && <p className="hint">A hashed column reaches computations as the SHA-256 (hex) of each non-empty value, never as uploaded.</p>}
      {node.kind === "table" && (!readOnly || node.unique_column_combinations?.length) && (
        <fieldset className="unique">
          <legend>Unique together</legend>
          <p className="hint">No two rows may have the same values in all the columns of one combination.</p>
          {(node.unique_column_combinations ?? []).map((combo, k) => (
            <div key={k} role="group" aria-label={`Unique combination ${k + 1}`} className="combo">
              {named.map((c) => (
                <label key={c.name} className="check">
                  <input type="checkbox" checked={combo.includes(c.name)} disabled={readOnly} onChange={(e) => tick(k, c.name, e.target.checked)} />
                  {c.name}
                </label>
              ))}
              {combo
                .filter((name) => !named.some((c) => c.name === name))
                .map((name) => (
                  <label key={`unknown ${name}`} className="check error">
                    <input type="checkbox" checked disabled={readOnly} onChange={() => tick(k, name, false)} />
                    {name || "(no name)"}: no such column
                  </label>
                ))}
              {combo.length === 0 && <span className="hint">Tick the columns that together must be unique.</span>}
              {!readOnly && (
                <button type="button" className="small" aria-label={`Remove unique combination ${k + 1}`} onClick={() => removeCombo(k)}>
                  ✕
                </button>
              )}
            </div>
          ))}
          {!readOnly && (
            <button type="button" className="small" disabled={named.length === 0} onClick={() => set((n) => ({ ...n, unique_column_combinations: [...(n.unique_column_combinations ?? []), []] }))}>
              Add unique combination
            </button>
          )}
        </fieldset>
      )}
      {!readOnly && (
        <div className="test-dataset">
          {testDataset ? (
            <p>
              Test dataset attached ({formatBytes(testDataset.size)}).{" "}
              <button type="button" className="small" onClick={deleteTest}>
                Remove test dataset
              </button>
            </p>
          ) : (
            <label>
              Test dataset (optional, not encrypted: use made-up data)
              <input type="file" onChange={(e) => e.target.files?.[0] && putTest(e.target.files[0])} />
            </label>
          )}
          <ErrorText error={testError} />
        </div>
      )}
    </article>
  );
}
