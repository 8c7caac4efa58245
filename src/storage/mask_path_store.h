// MaskPathStore: the two upstream UPDATEs of CONTRACT §5 that tell the rest of the pipeline an
// asset is segmented (`masked_local_path IS NOT NULL`).
#pragma once

#include <string>

#include "common/status.h"
#include "storage/postgres.h"

namespace segmentor {

struct MaskUpdateResult {
  // False when no row has that id. Not an error: upstream may not have inserted the row (or
  // deleted it); the worker still publishes the masked event, as the Python service did. It is
  // logged as a warning so the mismatch is visible.
  bool row_matched = false;
};

// Writes product-mask paths into product_images / video_frames through prepared statements.
// Thread-safe (the database serialises). Does not own `db`, which must outlive it.
class MaskPathStore {
 public:
  // Declares the prepared statements on `db`.
  explicit MaskPathStore(PostgresDatabase* db);

  // `UPDATE product_images SET masked_local_path = $1 WHERE img_id = $2`.
  // kInvalidArgument for an empty id or path; kUnavailable
  // when the database stayed unreachable through the retries.
  Result<MaskUpdateResult> set_image_mask(const std::string& img_id, const std::string& mask_path);

  // `UPDATE video_frames SET masked_local_path = $1 WHERE frame_id = $2`; errors as above.
  Result<MaskUpdateResult> set_frame_mask(const std::string& frame_id,
                                          const std::string& mask_path);

 private:
  Result<MaskUpdateResult> update(const char* statement, const char* table, const std::string& id,
                                  const std::string& mask_path);

  PostgresDatabase* const db_;
};

}  // namespace segmentor
