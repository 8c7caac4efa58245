-- The two upstream tables the worker updates (CONTRACT §5), for a stand-alone compose project.
-- In the real pipeline the upstream migrations create them; the worker creates its own tables.
CREATE TABLE IF NOT EXISTS product_images (
  img_id VARCHAR(255) PRIMARY KEY,
  product_id VARCHAR(255),
  local_path VARCHAR(500) NOT NULL,
  masked_local_path VARCHAR(500)
);
CREATE TABLE IF NOT EXISTS video_frames (
  frame_id VARCHAR(255) PRIMARY KEY,
  video_id VARCHAR(255),
  ts FLOAT NOT NULL,
  local_path VARCHAR(500) NOT NULL,
  masked_local_path VARCHAR(500)
);
