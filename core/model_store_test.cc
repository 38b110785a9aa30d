#include "core/model_store.h"

#include <unordered_set>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(ModelRefTest, GlobalAndClientRefsAreDistinct) {
  EXPECT_NE(ModelRef::Global(3), ModelRef::OfClient(0, 3));
  EXPECT_NE(ModelRef::OfClient(1, 3), ModelRef::OfClient(2, 3));
  EXPECT_EQ(ModelRef::Global(3).ToString(), "global@3");
  EXPECT_EQ(ModelRef::OfClient(17, 5).ToString(), "client17@5");
  EXPECT_LT(ModelRef::Global(9), ModelRef::OfClient(0, 0));
  std::unordered_set<ModelRef, ModelRefHash> set = {ModelRef::Global(1), ModelRef::OfClient(1, 1),
                                                    ModelRef::OfClient(1, 2)};
  EXPECT_EQ(set.size(), 3u);
}

TEST(ModelStoreTest, PutGetReleaseByRef) {
  ModelStore store;
  auto a = std::make_shared<const std::vector<float>>(std::vector<float>{1, 2});
  auto b = std::make_shared<const std::vector<float>>(std::vector<float>{3});
  store.Put(ModelRef::Global(0), a);
  store.Put(ModelRef::OfClient(4, 0), b);
  EXPECT_EQ(store.Get(ModelRef::Global(0)), a);
  EXPECT_EQ(store.Get(ModelRef::OfClient(4, 0)), b);
  EXPECT_EQ(store.Get(ModelRef::OfClient(0, 0)), nullptr);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.floats(), 3u);
  ModelStore::Params held = store.Get(ModelRef::Global(0));
  store.Release(ModelRef::Global(0));
  EXPECT_EQ(store.Get(ModelRef::Global(0)), nullptr);
  EXPECT_EQ((*held)[1], 2.0f);  // a reader keeps its copy
  store.Release(ModelRef::Global(0));  // no-op
  EXPECT_EQ(store.size(), 1u);
}

}  // namespace
}  // namespace fedsim
