// The API's objects, as http/openapi.json describes them.

export type NodeKind = "raw" | "table" | "python" | "sql" | "r";
export const FORMAT_TYPES = ["STRING", "INTEGER", "FLOAT", "EMAIL", "DATE_ISO8601", "PHONE_NUMBER_E164", "HASH_SHA256_HEX"] as const;

/** HASH_WITH_SHA256_HEX is the one hash_with a column takes. */
export const HASH_WITH_SHA256_HEX = "SHA256_HEX";

export interface Column {
  name: string;
  format_type: string;
  is_nullable: boolean;
  hash_with?: string;
}

export interface StaticFile {
  name: string;
  content: string;
}

export interface Node {
  name: string;
  kind: NodeKind;
  is_required?: boolean;
  columns?: Column[];
  unique_column_combinations?: string[][];
  script?: string;
  dependencies?: string[];
  files?: StaticFile[];
  enable_logs_on_error?: boolean;
  enable_logs_on_success?: boolean;
  minimum_rows_count?: number;
}

export interface Participant {
  email: string;
  data_owner_of?: string[];
  analyst_of?: string[];
}

export interface Definition {
  name: string;
  description?: string;
  owner: string;
  nodes: Node[];
  participants: Participant[];
}

export interface TestDataset {
  node: string;
  size: number;
}

export interface Draft {
  id: string;
  owner: string;
  definition: Definition;
  published_id?: string;
  created_at: string;
  updated_at: string;
  test_datasets?: TestDataset[] | null;
}

export interface OutputFile {
  path: string;
  size: number;
}

export interface NodeTest {
  node: string;
  kind: NodeKind;
  status: "ok" | "failed" | "skipped";
  error?: string;
  logs?: string;
  line?: number;
  outputs?: OutputFile[];
}

export interface DraftTest {
  id: string;
  draft_id: string;
  state: "running" | "done";
  nodes: NodeTest[] | null;
  error?: string;
  created_at: string;
  finished_at?: string;
}

export interface DCRSummary {
  id: string;
  name: string;
  owner: string;
  published_at: string;
}

export interface Dataset {
  dcr_id: string;
  node: string;
  manifest_hash: string;
  size: number;
  published_by: string;
  published_at: string;
  validation_job?: string;
}

export interface DCRView {
  id: string;
  definition: Definition;
  published_by: string;
  published_at: string;
  datasets: Dataset[];
}

export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface Job {
  id: string;
  dcr_id: string;
  node: string;
  created_by: string;
  state: JobState;
  error?: string;
  warnings?: string[];
  result_size: number;
  has_logs: boolean;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  result_deleted_at?: string;
}

export interface Attestation {
  platform: string;
  public_key: string; // base64
  hpke_kem: number;
  hpke_kdf: number;
  hpke_aead: number;
}

export interface Issue {
  line: number;
  column?: string;
  value?: string;
  message: string;
}

export interface ValidationReport {
  valid: boolean;
  rows: number;
  columns: number;
  bytes: number;
  error_count: number;
  errors: Issue[] | null;
  hint?: string;
}

export const isData = (k: NodeKind) => k === "raw" || k === "table";
export const isCompute = (k: NodeKind) => k === "python" || k === "sql" || k === "r";
export const isDone = (s: JobState) => s === "succeeded" || s === "failed" || s === "cancelled";

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  node?: string;
  detail?: string;
  prev: string;
  hash: string;
}
