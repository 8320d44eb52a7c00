// The planner's side of the front <-> planner protocol (native/front/protocol.h).
// Stub: filled in by the planner work (issue 20).
#include <napi.h>

namespace hako {
void RegisterPlannerLink(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}
} // namespace hako
