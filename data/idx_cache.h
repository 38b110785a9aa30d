// A cache of decompressed IDX files. Inflating Fashion-MNIST's 30 MB of gzip
// takes about 0.4 s of one core, and a multi-process run pays it in every
// process (the server and each worker). ReadIdxFile (data/dataset.h) keeps
// an uncompressed copy of each large gzipped IDX file it reads in the cache
// folder and reads that copy instead on later loads (a plain read, ~20 ms).
// ReadIdxBytes maps the copy instead of reading it (~3 ms for Fashion-MNIST's
// training images), so the processes of a run on one machine share its pages.
//
// The folder: $FEDSIM_CACHE_DIR when set (an empty value or "off" turns the
// cache off), else $XDG_CACHE_HOME/fedsim, else $HOME/.cache/fedsim; no cache
// when none of them is set. A copy is keyed by the source's absolute path,
// size, modification time (ns), inode and device, so an edited or replaced
// source never hits an old copy. Copies are written to a temporary name and
// renamed into place, so processes that load the same file at once never see
// half a copy; a copy that does not read back as a whole, valid IDX file is
// deleted and replaced. Every cache failure (no folder, no
// space, no permission) only costs the speed-up: the source is read instead.
// Removing the folder is always safe.
//
// Thread safety: all functions are thread-safe and process-safe.
#ifndef FEDSIM_DATA_IDX_CACHE_H_
#define FEDSIM_DATA_IDX_CACHE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "data/dataset.h"

namespace fedsim {

// Sources smaller than this (compressed bytes) are read directly: inflating
// them costs less than a cache entry is worth.
inline constexpr uint64_t kIdxCacheMinSourceBytes = uint64_t{1} << 20;

// The cache folder as the environment says (see above); nullopt = off.
std::optional<std::string> IdxCacheDir();

// Where the uncompressed copy of `source` lives in `dir`: "<dir>/<name>-<key>"
// with <name> the source's file name without ".gz" and <key> 16 hex digits
// of the identity above. nullopt when `source` cannot be stat'ed.
std::optional<std::string> IdxCachePath(const std::string& dir, const std::string& source);

// Writes `array` as an uncompressed IDX file at `path`, atomically (a
// temporary file in the same folder, then rename), creating the folder.
// Returns false, leaving nothing behind, on any failure.
bool WriteIdxCacheFile(const std::string& path, const IdxArray& array);

// True when the file at `path` starts with the gzip magic bytes.
bool IsGzipFile(const std::string& path);

// Maps the copy at `path` read-only (its pages prefaulted from the page
// cache) when it is a whole, valid uncompressed IDX file of unsigned bytes:
// the magic number, 1 or more dims, and exactly the bytes they describe.
// nullopt otherwise (no file, damaged, or it cannot be mapped).
std::optional<IdxBytes> MapIdxCacheFile(const std::string& path);

}  // namespace fedsim

#endif  // FEDSIM_DATA_IDX_CACHE_H_
