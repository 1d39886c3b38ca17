import { useState } from "react";
import { ErrorText } from "../components/common";
import { isCompute, isData, type Participant } from "../types";
import { setNode } from "./DataTab";
import type { EditorProps } from "./DraftEditor";

/** ParticipantsTab edits who takes part and with what rights, and the log
 * policy of each computation. */
export function ParticipantsTab({ def, update, readOnly }: EditorProps) {
  const [email, setEmail] = useState("");
  const [addError, setAddError] = useState<string | null>(null);
  const dataNodes = def.nodes.filter((n) => isData(n.kind));
  const computeNodes = def.nodes.filter((n) => isCompute(n.kind));

  const setP = (i: number, f: (p: Participant) => Participant) => update((d) => ({ ...d, participants: d.participants.map((p, j) => (j === i ? f(p) : p)) }));
  const toggle = (list: string[] | undefined, name: string, on: boolean) => {
    const out = (list ?? []).filter((x) => x !== name);
    if (on) out.push(name);
    return out.length ? out : undefined;
  };

  const add = (ev: React.FormEvent) => {
    ev.preventDefault();
    if (def.participants.some((p) => p.email.toLowerCase() === email.toLowerCase())) {
      setAddError(`${email} is already a participant`);
      return;
    }
    setAddError(null);
    update((d) => ({ ...d, participants: [...d.participants, { email }] }));
    setEmail("");
  };

  return (
    <div className="participants-tab">
      <p>
        Owner: <strong>{def.owner}</strong>. Every participant reads the whole definition, every script included.
      </p>
      <div className="table-scroll">
        <table className="participants">
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Data owner of</th>
              <th scope="col">Analyst of</th>
              {!readOnly && <th scope="col"><span className="visually-hidden">Remove</span></th>}
            </tr>
          </thead>
          <tbody>
            {def.participants.map((p, i) => (
              <tr key={i} data-participant={p.email}>
                <td data-label="Email">
                  <input type="email" aria-label={`Participant ${i + 1} email`} value={p.email} readOnly={readOnly} onChange={(e) => setP(i, (p) => ({ ...p, email: e.target.value }))} />
                </td>
                <td data-label="Data owner of">
                  <fieldset>
                    <legend className="visually-hidden">{p.email} is data owner of</legend>
                    {dataNodes.length === 0 && <span className="hint">no data nodes</span>}
                    {dataNodes.map((n) => (
                      <label key={n.name} className="check">
                        <input type="checkbox" disabled={readOnly} checked={!!p.data_owner_of?.includes(n.name)} onChange={(e) => setP(i, (p) => ({ ...p, data_owner_of: toggle(p.data_owner_of, n.name, e.target.checked) }))} />
                        {n.name}
                      </label>
                    ))}
                  </fieldset>
                </td>
                <td data-label="Analyst of">
                  <fieldset>
                    <legend className="visually-hidden">{p.email} is analyst of</legend>
                    {computeNodes.length === 0 && <span className="hint">no computations</span>}
                    {computeNodes.map((n) => (
                      <label key={n.name} className="check">
                        <input type="checkbox" disabled={readOnly} checked={!!p.analyst_of?.includes(n.name)} onChange={(e) => setP(i, (p) => ({ ...p, analyst_of: toggle(p.analyst_of, n.name, e.target.checked) }))} />
                        {n.name}
                      </label>
                    ))}
                  </fieldset>
                </td>
                {!readOnly && (
                  <td>
                    <button type="button" className="small danger" aria-label={`Remove participant ${p.email}`} onClick={() => update((d) => ({ ...d, participants: d.participants.filter((_, j) => j !== i) }))}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {!readOnly && (
        <form className="inline-form" onSubmit={add} aria-label="Add participant">
          <label>
            Participant email
            <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
          </label>
          <button type="submit">Add participant</button>
          <ErrorText error={addError} />
        </form>
      )}
      <h3>Log policy</h3>
      <p className="hint">Logs can leak data: analysts see a computation's logs only where its policy allows it.</p>
      {computeNodes.length === 0 && <p>No computations yet.</p>}
      <ul className="log-policy">
        {computeNodes.map((n) => (
          <li key={n.name} data-policy={n.name}>
            <strong>{n.name}</strong>
            <label className="check">
              <input type="checkbox" disabled={readOnly} checked={!!n.enable_logs_on_error} onChange={(e) => update((d) => setNode(d, n.name, (n) => ({ ...n, enable_logs_on_error: e.target.checked || undefined })))} />
              Logs on error
            </label>
            <label className="check">
              <input type="checkbox" disabled={readOnly} checked={!!n.enable_logs_on_success} onChange={(e) => update((d) => setNode(d, n.name, (n) => ({ ...n, enable_logs_on_success: e.target.checked || undefined })))} />
              Logs on success
            </label>
          </li>
        ))}
      </ul>
    </div>
  );
}
