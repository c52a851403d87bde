// kgen conv2d: 288 threads, workgroup 64
@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read> b_in1: array<f32>;
@group(0) @binding(2) var<storage, read> b_in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i_t0: i32 = i32((wid.y * nwg.x + wid.x) * 64u + lid.x);
  if i_t0 >= 288 { return; }
  let i_q_m: i32 = (i_t0 / 36);
  let i_q_h: i32 = ((i_t0 / 6) % 6);
  let i_q_w: i32 = (i_t0 % 6);
  var acc0: f32 = 0.0;
  for (var i_rc: i32 = 0; i_rc < 4; i_rc = i_rc + 1) {
    for (var i_rh: i32 = 0; i_rh < 3; i_rh = i_rh + 1) {
      for (var i_rw: i32 = 0; i_rw < 3; i_rw = i_rw + 1) {
        let v0: f32 = select(0.0, b_in0[((6 * i_q_h) + i_q_w + (36 * i_rc) + (6 * i_rh) + i_rw - 7)], (((i_q_h + i_rh - 1) >= 0) & ((i_q_w + i_rw - 1) >= 0) & ((i_q_h + i_rh - 1) < 6) & ((i_q_w + i_rw - 1) < 6)));
        let v1: f32 = b_in1[((36 * i_q_m) + (9 * i_rc) + (3 * i_rh) + i_rw)];
        acc0 = (acc0 + (v0 * v1));
      }
    }
  }
  let e0: f32 = b_in2[i_q_m];
  b_out[((6 * i_q_h) + (36 * i_q_m) + i_q_w)] = (acc0 + e0);
}
