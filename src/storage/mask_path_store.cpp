#include "storage/mask_path_store.h"

#include <spdlog/spdlog.h>

#include "storage/pg_txn.h"

namespace segmentor {
namespace {

constexpr const char* kUpdateImage = "segmentor_update_image_mask";
constexpr const char* kUpdateFrame = "segmentor_update_frame_mask";

}  // namespace

MaskPathStore::MaskPathStore(PostgresDatabase* db) : db_(db) {
  db_->prepare(kUpdateImage, "UPDATE product_images SET masked_local_path = $1 WHERE img_id = $2");
  db_->prepare(kUpdateFrame, "UPDATE video_frames SET masked_local_path = $1 WHERE frame_id = $2");
}

Result<MaskUpdateResult> MaskPathStore::set_image_mask(const std::string& img_id,
                                                       const std::string& mask_path) {
  return update(kUpdateImage, "product_images", img_id, mask_path);
}

Result<MaskUpdateResult> MaskPathStore::set_frame_mask(const std::string& frame_id,
                                                       const std::string& mask_path) {
  return update(kUpdateFrame, "video_frames", frame_id, mask_path);
}

Result<MaskUpdateResult> MaskPathStore::update(const char* statement, const char* table,
                                               const std::string& id,
                                               const std::string& mask_path) {
  if (id.empty()) return invalid_argument(std::string(table) + ": mask update without an id");
  if (mask_path.empty()) {
    return invalid_argument(std::string(table) + ": empty mask path for " + id);
  }
  MaskUpdateResult result;
  const std::string what = std::string("update ") + table + " " + id;
  SEGMENTOR_RETURN_IF_ERROR(db_->run(what, [&](PgTxn& txn) {
    return txn.guard(what, [&](pqxx::work& work) {
      const pqxx::result rows = work.exec_prepared(statement, mask_path, id);
      result.row_matched = rows.affected_rows() > 0;
    });
  }));
  if (!result.row_matched) {
    spdlog::warn("database: no {} row with id {}; masked_local_path not written", table, id);
  }
  return result;
}

}  // namespace segmentor
