/** A tree entry as the Hub's tree API lists it, reduced to the fields Ferry passes on (no Xet hints). */
export interface TreeEntry {
  type: 'file' | 'directory';
  path: string;
  /** Git oid: the blob sha1 of a file (of its LFS pointer for LFS files), or the tree sha1 of a directory. */
  oid: string;
  size: number;
  lfs?: { oid: string; size: number; pointerSize: number };
}

/** One commit of a repo as the mirror keeps it: fetched upstream once, then kept forever. */
export interface CommitRecord {
  /** The repo id as upstream spells it (`org/name`). */
  id: string;
  /** 40-hex commit. */
  sha: string;
  /** Gated or private upstream: every request is checked upstream with the client's own token. */
  restricted: boolean;
  gated: string | false;
  private: boolean;
  /** Every file and directory at this commit (the recursive tree, in upstream's order). */
  entries: TreeEntry[];
  fetched_at: number;
}

/** A file as the resolve route serves it. */
export interface ResolvedHubFile {
  record: CommitRecord;
  entry: TreeEntry;
  /** What the Hub gives as ETag: the sha256 for LFS files, the git blob sha1 otherwise. */
  etag: string;
  size: number;
  /** Present: Ferry holds verified bytes here. */
  localPath?: string;
}

/** The Hub's X-Error-Code values the mirror answers with. */
export type HubErrorCode = 'RepoNotFound' | 'RevisionNotFound' | 'EntryNotFound' | 'GatedRepo';

/** A mirror cache entry for `ferry mirror list` and `GET /api/mirror`. */
export interface MirrorCacheEntry {
  etag: string;
  size_bytes: number;
  /** Where it came from when the mirror fetched it. */
  repo?: string;
  path?: string;
  commit?: string;
  last_used_at: string;
}
