// kgen matmul: 8 threads, workgroup 64
@group(0) @binding(0) var<storage, read> b_in0_v4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b_in1_v4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> b_out_v4: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i_t0: i32 = i32((wid.y * nwg.x + wid.x) * 64u + lid.x);
  if i_t0 >= 8 { return; }
  let i_q_i0: i32 = (i_t0 / 2);
  let i_q_i1: i32 = (i_t0 % 2);
  var acc0: f32 = 0.0;
  var acc1: f32 = 0.0;
  var acc2: f32 = 0.0;
  var acc3: f32 = 0.0;
  var acc4: f32 = 0.0;
  var acc5: f32 = 0.0;
  var acc6: f32 = 0.0;
  var acc7: f32 = 0.0;
  for (var i_k_o: i32 = 0; i_k_o < 4; i_k_o = i_k_o + 1) {
    let v0v: vec4<f32> = b_in0_v4[(i_k_o + (8 * i_q_i0))];
    let v1v: vec4<f32> = b_in1_v4[((8 * i_k_o) + i_q_i1)];
    let v5v: vec4<f32> = b_in0_v4[(i_k_o + (8 * i_q_i0) + 4)];
    let v7v: vec4<f32> = b_in1_v4[((8 * i_k_o) + i_q_i1 + 2)];
    let v13v: vec4<f32> = b_in1_v4[((8 * i_k_o) + i_q_i1 + 4)];
    let v19v: vec4<f32> = b_in1_v4[((8 * i_k_o) + i_q_i1 + 6)];
    acc0 = (acc0 + (v0v.x * v1v.x));
    acc1 = (acc1 + (v0v.x * v1v.y));
    acc2 = (acc2 + (v0v.x * v1v.z));
    acc3 = (acc3 + (v0v.x * v1v.w));
    acc4 = (acc4 + (v5v.x * v1v.x));
    acc5 = (acc5 + (v5v.x * v1v.y));
    acc6 = (acc6 + (v5v.x * v1v.z));
    acc7 = (acc7 + (v5v.x * v1v.w));
    acc0 = (acc0 + (v0v.y * v7v.x));
    acc1 = (acc1 + (v0v.y * v7v.y));
    acc2 = (acc2 + (v0v.y * v7v.z));
    acc3 = (acc3 + (v0v.y * v7v.w));
    acc4 = (acc4 + (v5v.y * v7v.x));
    acc5 = (acc5 + (v5v.y * v7v.y));
    acc6 = (acc6 + (v5v.y * v7v.z));
    acc7 = (acc7 + (v5v.y * v7v.w));
    acc0 = (acc0 + (v0v.z * v13v.x));
    acc1 = (acc1 + (v0v.z * v13v.y));
    acc2 = (acc2 + (v0v.z * v13v.z));
    acc3 = (acc3 + (v0v.z * v13v.w));
    acc4 = (acc4 + (v5v.z * v13v.x));
    acc5 = (acc5 + (v5v.z * v13v.y));
    acc6 = (acc6 + (v5v.z * v13v.z));
    acc7 = (acc7 + (v5v.z * v13v.w));
    acc0 = (acc0 + (v0v.w * v19v.x));
    acc1 = (acc1 + (v0v.w * v19v.y));
    acc2 = (acc2 + (v0v.w * v19v.z));
    acc3 = (acc3 + (v0v.w * v19v.w));
    acc4 = (acc4 + (v5v.w * v19v.x));
    acc5 = (acc5 + (v5v.w * v19v.y));
    acc6 = (acc6 + (v5v.w * v19v.z));
    acc7 = (acc7 + (v5v.w * v19v.w));
  }
  b_out_v4[((4 * i_q_i0) + i_q_i1)] = vec4<f32>(acc0, acc1, acc2, acc3);
  b_out_v4[((4 * i_q_i0) + i_q_i1 + 2)] = vec4<f32>(acc4, acc5, acc6, acc7);
}
