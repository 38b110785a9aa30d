// Writes small run and comparison folders for the report tests.
#ifndef FEDSIM_REPORT_REPORT_TEST_UTIL_H_
#define FEDSIM_REPORT_REPORT_TEST_UTIL_H_

#include <filesystem>
#include <fstream>
#include <string>

namespace fedsim {

// A finished run of 3 evaluations and 2 tasks in `dir`.
inline void WriteFakeRun(const std::filesystem::path& dir, const std::string& algorithm, int seed) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "manifest.json")
      << "{\"name\": \"fake\", \"scenario_hash\": \"" << std::string(64, 'a')
      << "\", \"seed\": " << seed << ", \"build_id\": \"b1\", \"algorithm\": \"" << algorithm
      << "\", \"model\": \"softmax(60-10)\", \"final_model_hash\": \"" << std::string(64, 'f')
      << "\", \"stop_reason\": \"max_commits\", \"final_accuracy\": 0.5, \"virtual_time\": 2, "
         "\"updates_applied\": 4, \"wall_s\": 0.1}";
  std::ofstream(dir / "metrics.csv")
      << "virtual_time,version,updates_applied,updates_dropped,test_loss,test_accuracy,"
         "bytes_down,bytes_up,mean_staleness,max_staleness\n"
         "0,0,0,0,2,0.1,0,0,0,0\n1,1,2,0,1.5,0.3,100,100,0,0\n2,2,4,0,1,0.5,200,200,1,1\n";
  std::ofstream(dir / "events.jsonl")
      << "{\"ev\":\"dispatch\",\"t\":0,\"task\":1,\"client\":0,\"base\":0,\"dur\":1,\"seed\":1}\n"
         "{\"ev\":\"dispatch\",\"t\":0,\"task\":2,\"client\":1,\"base\":0,\"dur\":1,\"seed\":2}\n"
         "{\"ev\":\"arrival\",\"t\":1,\"task\":1,\"client\":0,\"base\":0,\"staleness\":0,"
         "\"accepted\":true}\n"
         "{\"ev\":\"commit\",\"t\":1,\"version\":1,\"applied\":[{\"task\":1,\"client\":0,"
         "\"staleness\":0,\"weight\":1}]}\n";
  std::ofstream(dir / "scenario.textproto") << "name: \"fake\"\nnum_clients: 3\n";
}

}  // namespace fedsim

#endif  // FEDSIM_REPORT_REPORT_TEST_UTIL_H_
