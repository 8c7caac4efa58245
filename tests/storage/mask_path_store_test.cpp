#include "storage/mask_path_store.h"

#include <gtest/gtest.h>

#include "test_database.h"

namespace segmentor {
namespace {

using testing::sql;
using testing::sql_literal;
using testing::unique_name;

class MaskPathStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::connect();
    ASSERT_NE(db_, nullptr);
    store_ = std::make_unique<MaskPathStore>(db_.get());
  }

  static std::string add_image() {
    const std::string id = unique_name("img");
    sql("INSERT INTO product_images (img_id, product_id, local_path) VALUES (" + sql_literal(id) +
        ", 'p1', '/app/data/images/" + id + ".jpg')");
    return id;
  }
  static std::string add_frame() {
    const std::string id = unique_name("frame");
    sql("INSERT INTO video_frames (frame_id, video_id, ts, local_path) VALUES (" + sql_literal(id) +
        ", 'v1', 1.5, '/app/data/frames/" + id + ".jpg')");
    return id;
  }
  static std::optional<std::string> image_mask(const std::string& id) {
    return sql("SELECT masked_local_path FROM product_images WHERE img_id = " + sql_literal(id));
  }

  std::unique_ptr<PostgresDatabase> db_;
  std::unique_ptr<MaskPathStore> store_;
};

TEST_F(MaskPathStoreTest, WritesTheImageMaskPath) {
  const std::string id = add_image();
  const std::string other = add_image();
  const std::string path = "/app/data/masks_product/product_images/" + id + ".png";
  auto result = store_->set_image_mask(id, path);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_TRUE(result->row_matched);
  EXPECT_EQ(image_mask(id), path);
  EXPECT_EQ(image_mask(other), std::nullopt) << "the UPDATE touched another row";
}

TEST_F(MaskPathStoreTest, WritesTheFrameMaskPath) {
  const std::string id = add_frame();
  const std::string path = "/app/data/masks_product/video_frames/" + id + ".png";
  auto result = store_->set_frame_mask(id, path);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_TRUE(result->row_matched);
  EXPECT_EQ(sql("SELECT masked_local_path FROM video_frames WHERE frame_id = " + sql_literal(id)),
            path);
  // The image table has no such id.
  auto image = store_->set_image_mask(id, path);
  ASSERT_TRUE(image.ok());
  EXPECT_FALSE(image->row_matched);
}

TEST_F(MaskPathStoreTest, UnknownIdMatchesNoRowAndIsNotAnError) {
  auto result = store_->set_image_mask(unique_name("missing"), "/m/x.png");
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_FALSE(result->row_matched);
}

TEST_F(MaskPathStoreTest, RewritingTheSamePathIsHarmless) {
  const std::string id = add_image();
  ASSERT_TRUE(store_->set_image_mask(id, "/m/a.png").ok());
  auto again = store_->set_image_mask(id, "/m/a.png");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->row_matched);
  EXPECT_EQ(image_mask(id), "/m/a.png");
}

TEST_F(MaskPathStoreTest, EmptyIdOrPathIsRejected) {
  EXPECT_EQ(store_->set_image_mask("", "/m/a.png").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->set_frame_mask("f", "").status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace segmentor
